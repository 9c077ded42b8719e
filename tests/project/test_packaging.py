"""The README's two commands, .ci/run, the package surface and lint."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:sh|bash|shell)\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_two_commands_and_ci_runs_the_second():
    commands = readme_commands()
    assert len(commands) == 2
    assert "python -m skmpsae" in commands[0] and "pytest" in commands[1]
    for command in commands:
        assert "constraints-cpu.txt" in command  # CPU torch, no multi-GB CUDA download
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    ci_command = [line for line in ci if line.startswith("python3 -m venv")]
    assert ci_command == [commands[1].replace("pip install ", "pip install -q ", 1)]


def test_public_api():
    import skmpsae
    from skmpsae import MatchingPursuitSAE, mp_encode  # noqa: F401
    from skmpsae.metrics import dead_fraction, l0, r2_score  # noqa: F401

    for name in skmpsae.__all__:
        assert getattr(skmpsae, name) is not None


def test_main_job_runs(tmp_path):
    plot = tmp_path / "curve.png"
    result = subprocess.run(
        [sys.executable, "-m", "skmpsae", "--data", "digits", "--k", "4", "--max-iter", "2",
         "--plot", str(plot)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    assert "MP-SAE" in result.stdout and "R2" in result.stdout
    # Both accountings (issue 14), after each SAE's own rule: three tables of R2, mean L0.
    tables = [line for line in result.stdout.splitlines() if re.match(r"\([a-z]\) ", line)]
    assert [t[:4] for t in tables] == ["(a) ", "(b) ", "(c) "]
    assert "Own inference rule" in tables[0] and "Equal per-sample L0" in tables[1]
    assert "Equal mean L0" in tables[2]
    assert result.stdout.count("k=4 R2  mean L0") == 3
    assert plot.stat().st_size > 10_000


def test_main_job_reads_npy(tmp_path, digits):
    import numpy as np

    np.save(tmp_path / "emb.npy", digits[:300])
    result = subprocess.run(
        [sys.executable, "-m", "skmpsae", "--data", str(tmp_path / "emb.npy"), "--k", "2",
         "--max-iter", "1", "--plot", str(tmp_path / "p.png")],
        capture_output=True, text=True, check=True, timeout=300,
    )
    assert "emb.npy" in result.stdout


def test_print_accountings_three_tables_per_k(capsys):
    from skmpsae._cli import print_accountings

    row = ((0.9, 8.5), (0.8, 3.9), (0.7, 4.0))  # own, per-sample, mean at k=4
    print_accountings({"MP-SAE": [row, row]}, [4, 8], ("fit", {"MP-SAE": "1.00x"}))
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if line.startswith("MP-SAE")]
    assert len(lines) == 3 and all(line.endswith("  1.00x") for line in lines)
    assert "0.9000    8.50*" in lines[0]  # own rule: 8.5 is more than 10% off k=4 ...
    assert "0.9000    8.50 " in lines[0]  # ... not off k=8
    assert "0.8000    3.90 " in lines[1] and "0.7000    4.00 " in lines[2]
    assert "0.7000    4.00*" in lines[2]  # 4.0 is far from k=8


def test_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")  # installed with the test extra
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
