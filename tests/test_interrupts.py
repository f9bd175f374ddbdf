import os
import signal
import subprocess
import sys
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


def test_an_interrupt_removes_the_temporary_folders_of_the_command(tmp_path):
    """The interrupt leaves with os._exit, so a TemporaryDirectory's own `with` never removes it."""
    program = (
        "import os, signal, sys, time\n"
        "from mrtcurate import interrupts\n"
        "with interrupts.handled(), interrupts.temporary_folder('mrt-test-') as folder:\n"
        "    open(os.path.join(folder, 'part'), 'w').close()\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    finished = subprocess.run(
        [sys.executable, "-c", program], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 130, finished.stderr
    assert finished.stderr.strip().splitlines()[-1] == "interrupted: nothing was published"
    assert list(tmp_path.iterdir()) == []


def test_a_thread_still_making_files_cannot_bring_back_a_folder_the_interrupt_removed(tmp_path):
    """As Beam's FileSystems.create does, the writer makes the folders above each file it creates: without the
    hold-off it brought the staging folder back after the interrupt's cleanup had removed it."""
    program = (
        "import os, shutil, signal, sys, threading, time\n"
        "from mrtcurate import interrupts\n"
        "folder = sys.argv[1]\n"
        "def made():\n"
        "    os.mkdir(folder)\n"
        "    return folder\n"
        "def write():\n"
        "    for index in range(10**9):\n"
        "        with interrupts.cleanups_held_off():\n"
        "            os.makedirs(os.path.join(folder, 'spill'), exist_ok=True)\n"
        "            sink = open(os.path.join(folder, 'spill', str(index)), 'wb')\n"
        "        with sink:\n"
        "            sink.write(b'x' * 1000)\n"
        "with interrupts.handled(), interrupts.made_and_undone_on_interrupt(made, shutil.rmtree):\n"
        "    threading.Thread(target=write, daemon=True).start()\n"
        "    time.sleep(0.3)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
    )
    for attempt in range(5):
        folder = tmp_path / f"staging-{attempt}"
        finished = subprocess.run(
            [sys.executable, "-c", program, str(folder)], check=False, capture_output=True, text=True, timeout=60
        )
        assert finished.returncode == 130, finished.stderr
        assert not folder.exists()


def test_an_interrupt_while_temporary_folders_come_and_go_leaves_none(tmp_path):
    """The cleanups hold the lock to the exit while the main thread goes on: a folder made after they started, or
    one no longer registered but not yet removed, was left behind (the fresh-clone CI found a progress folder)."""
    program = (
        "import os, signal, threading, time\n"
        "from mrtcurate import interrupts\n"
        "threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "with interrupts.handled():\n"
        "    while True:\n"
        "        with interrupts.temporary_folder('mrt-test-') as folder:\n"
        "            open(os.path.join(folder, 'part'), 'w').close()\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    for _attempt in range(5):
        finished = subprocess.run(
            [sys.executable, "-c", program], check=False, env=env, capture_output=True, text=True, timeout=60
        )
        assert finished.returncode == 130, finished.stderr
        assert list(tmp_path.iterdir()) == []
