"""The second thread decoding borrows: one per process, none on a single core or while every core is busy."""

from speech_s2s import machine


def test_the_second_thread_is_one_per_process_and_lent_only_when_a_core_is_free(monkeypatch):
    monkeypatch.setattr(machine, "_second_thread", None)
    monkeypatch.setattr(machine, "_all_cores_busy", None)
    monkeypatch.setattr(machine, "usable_cores", lambda: 1)
    assert machine.second_thread() is None  # one core: nothing to lend
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    thread = machine.second_thread()
    assert thread is not None and machine.second_thread() is thread
    assert thread.submit(lambda: 6 * 7).result() == 42
    busy = [True]
    machine.share_cores(lambda: busy[0])
    assert machine.second_thread() is None  # every core busy with another process's decoding
    busy[0] = False
    assert machine.second_thread() is thread
