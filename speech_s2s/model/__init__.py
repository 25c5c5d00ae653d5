"""The Listen-Attend-Spell network (encoder, attention, decoder, the joint CTC/attention model) and its files."""
