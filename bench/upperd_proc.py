"""What the Python benches share about running an upperd process."""
import signal
import subprocess


def stop_upperd(proc, grace=15):
    """SIGTERM, then SIGKILL after `grace` seconds; always reaps it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
