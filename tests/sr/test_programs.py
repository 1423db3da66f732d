"""Pre-training then fine-tuning, end to end, as the orchestrator runs them: subprocesses that
talk through result files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("skimage")

from tests.sr.programs import SMOKE_FINETUNE, read_json, run_module  # noqa: E402

SCORES = ("niqe", "psnr", "ssim")


def fine_tune(pretrained: dict[str, Any], run_dir: Path, weights: list[str], cpus: str = "1",
              extra: list[str] | None = None) -> dict[str, Any]:
    """One smoke-size trial, its result file named by ORCH_RESULT_FILE as the master does."""
    run_dir.mkdir(parents=True)
    result = run_dir / "result.json"
    done = run_module("jobs.examples.sr.finetune",
                      ["--checkpoint", pretrained["checkpoint"], *weights, *SMOKE_FINETUNE, *(extra or [])],
                      cwd=run_dir, cpus=cpus, extra_env={"ORCH_RESULT_FILE": str(result)})
    assert done.returncode == 0, done.stderr
    return read_json(result)


def test_pretrain_writes_an_absolute_checkpoint_and_its_loss(pretrained: dict[str, Any]) -> None:
    checkpoint = Path(pretrained["checkpoint"])
    assert checkpoint.is_absolute() and checkpoint.is_file()
    assert 0 < pretrained["loss"] < 0.05
    assert 120_000 <= pretrained["parameters"] <= 180_000


# Every weighted term on.
ALL_TERMS = ["--lr", "1e-4", "--w2", "0.1", "--w3", "0.001", "--w4", "100"]


@pytest.fixture(scope="module")
def scored(pretrained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[dict[str, Any], bool]:
    """One trial with every term, named both a ``--result`` and an ORCH_RESULT_FILE: its
    result, and whether the ORCH_RESULT_FILE was written too."""
    run_dir = tmp_path_factory.mktemp("scored")
    explicit, from_env = run_dir / "explicit.json", run_dir / "env.json"
    done = run_module("jobs.examples.sr.finetune",
                      ["--checkpoint", pretrained["checkpoint"], *ALL_TERMS, *SMOKE_FINETUNE,
                       "--result", str(explicit)],
                      cwd=run_dir, extra_env={"ORCH_RESULT_FILE": str(from_env)})
    assert done.returncode == 0, done.stderr
    return read_json(explicit), from_env.exists()


def test_finetune_scores_held_out_images(scored: tuple[dict[str, Any], bool]) -> None:
    """A trial with every term; ``--result`` wins over ORCH_RESULT_FILE."""
    result, env_file_written = scored
    assert not env_file_written
    assert set(result["niqe_per_image"]) == {"camera", "chelsea", "coins"}
    assert 0 < result["niqe"] < 30 and 15 < result["psnr"] < 50 and 0 < result["ssim"] <= 1
    # Every weighted term was computed and trained on.
    assert {"mse", "perceptual", "adversarial", "style"} <= set(result["losses"])


def test_same_parameters_and_seed_give_the_same_score(pretrained: dict[str, Any],
                                                      scored: tuple[dict[str, Any], bool],
                                                      tmp_path: Path) -> None:
    first = scored[0]
    second = fine_tune(pretrained, tmp_path / "b", ALL_TERMS)
    other_seed = fine_tune(pretrained, tmp_path / "c", ALL_TERMS, extra=["--seed", "1"])
    assert {k: first[k] for k in SCORES} == {k: second[k] for k in SCORES}
    assert first["losses"] == second["losses"]
    assert other_seed["losses"] != first["losses"]


def test_threads_follow_the_cpu_allocation(pretrained: dict[str, Any], tmp_path: Path) -> None:
    result = fine_tune(pretrained, tmp_path / "two", ["--lr", "1e-4"], cpus="2")
    assert result["threads"] == 2
    assert pretrained["threads"] == 1


@pytest.mark.parametrize(("cpus", "args", "message"), [
    ("x", ["--checkpoint", "missing.pt", "--lr", "1e-4"], "ORCH_CPUS must be a whole number"),
    ("1", ["--checkpoint", "missing.pt", "--lr", "1e-4"], "checkpoint missing.pt does not exist"),
    ("1", ["--checkpoint", "missing.pt", "--lr", "1e-4", "--w3", "-1"], "the weights >= 0"),
])
def test_bad_input_fails_with_one_line(tmp_path: Path, cpus: str, args: list[str], message: str) -> None:
    done = run_module("jobs.examples.sr.finetune", args, cwd=tmp_path, cpus=cpus)
    assert done.returncode != 0
    assert message in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "result.json").exists()
