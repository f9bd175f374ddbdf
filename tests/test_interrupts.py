import signal
import threading
from types import SimpleNamespace

from mrtcurate import interrupts


def test_only_the_exit_signals_end_the_run(monkeypatch):
    # py-spy record --pid stops the process with ptrace, and sigtimedwait returned that stop: it was taken for a
    # SIGTERM, and the staging folder of a running job was removed under it.
    handled, stop = [], threading.Event()
    returned = iter([SimpleNamespace(si_signo=signal.SIGSTOP), SimpleNamespace(si_signo=signal.SIGTRAP), None])

    def sigtimedwait(_signals, _timeout):
        received = next(returned, None)
        if received is None:
            stop.set()
        return received

    monkeypatch.setattr(signal, "sigtimedwait", sigtimedwait)
    monkeypatch.setattr(interrupts, "_woken", lambda _wakeup: None)
    monkeypatch.setattr(interrupts, "_handle", handled.append)
    interrupts._watch(stop, -1)
    assert handled == []

    stop.clear()
    returned = iter([SimpleNamespace(si_signo=signal.SIGTERM), None])
    interrupts._watch(stop, -1)
    assert handled == [signal.SIGTERM]
