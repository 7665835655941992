"""examples/walkthrough_crf_rnn.py runs as a plain script (tiny settings): its numerical checks
agree and it writes the parameter figure."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "walkthrough_crf_rnn.py")


def test_crf_rnn_walkthrough_checks_its_derivation_and_writes_the_figure(tmp_path):
    out = tmp_path / "figures"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(out), "--iterations", "3",
                           "--pretrain", "1", "--train-images", "3", "--test-images", "2",
                           "--size", "24x32"], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert float(re.search(r"recurrence vs dense_crf: max \|ΔQ\| = (\S+)", text).group(1)) < 1e-5
    left, right = re.search(r"<K y, x> = (\S+), <y, Kᵀ x> = (\S+)", text).groups()
    assert abs(float(left) - float(right)) <= 1e-5 * abs(float(left))
    checks = re.findall(r"backward (\S+), finite differences (\S+)", text)
    assert len(checks) == 3
    for analytic, numeric in checks:
        assert abs(float(analytic) - float(numeric)) <= 1e-6 * max(1.0, abs(float(numeric)))
    assert re.search(r"network \+ CRF-as-RNN \(5 it\) +\d\.\d{3}", text), text
    assert (out / "crf_rnn_parameters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
