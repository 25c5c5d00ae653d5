from speech_s2s.errors import first_line


def test_an_exception_reads_as_its_type_and_first_line_or_its_type_alone():
    assert first_line(ValueError("  bad header\nat byte 8\n")) == "ValueError: bad header"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(OSError("")) == "OSError"
