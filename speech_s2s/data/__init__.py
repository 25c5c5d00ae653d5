"""Corpora and what training reads from them: manifests, checks, cached features, batches, augmentation, text normalisation."""
