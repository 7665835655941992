"""examples/post_walkthrough.py runs as a plain script: losses printed, the post's figures written."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "post_walkthrough.py")
FIGURES = ["upsampling_check.png", "image_and_annotation.png", "final_argmax_and_probability.png",
           "loss.png", "crf_vs_ground_truth.png", "before_after_crf.png"]


def test_walkthrough_runs_at_a_tiny_width_and_writes_its_figures(tmp_path):
    out = tmp_path / "figures"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, SCRIPT, "--width", "0.03125", "--iterations", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = re.findall(r"^Current Loss: (\S+)$", proc.stdout, flags=re.M)
    assert len(losses) == 2 and all(float(l) > 0 for l in losses), proc.stdout
    assert re.search(r"^Final Loss: \S+$", proc.stdout, flags=re.M), proc.stdout
    assert re.search(r"FCN-32s \+ CRF +cat IoU \d\.\d{3}", proc.stdout), proc.stdout
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
