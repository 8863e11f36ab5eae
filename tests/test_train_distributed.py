"""Training in several processes (torchrun, DistributedDataParallel with gloo on the CPU).

The end-to-end tests start ``python -m torch.distributed.run --nproc_per_node=2`` on 127.0.0.1
with ``tests/ddp_worker.py``, which runs ``attention-explorer train`` and notes which ranks
evaluate, save, and which sentences of each batch they train on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from explorer.cli import format_card
from explorer.seq2seq.checkpoint import load_checkpoint, read_card
from explorer.seq2seq.models.base import PAD
from explorer.seq2seq.models.families import build_model, make_config
from explorer.seq2seq.training.batch import Scheduled, make_batch, share_of_loss
from explorer.seq2seq.training.distributed import Distributed, from_environment
from explorer.seq2seq.training.options import TrainingError

ROOT = Path(__file__).resolve().parent.parent
needs_gloo = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="this torch build has no gloo backend for torch.distributed",
)

# A tiny Bahdanau model on the classroom corpus, dropout 0 (each process would draw its own
# dropout masks), one thread per process so both runs use the same kernels.
TRAIN = [
    "train", "--corpus", "classroom", "--corpus-size", "400", "--arch", "bahdanau",
    "--emb-dim", "16", "--hidden-dim", "32", "--dropout", "0", "--vocab-size", "80",
    "--batch-size", "16", "--eval-every", "6", "--checkpoint-every", "6", "--threads", "1",
    "--quiet",
]  # fmt: skip


def test_without_torchruns_variables_a_run_is_one_process():
    d = from_environment({})
    assert (d.rank, d.world_size, d.active, d.is_main) == (0, 1, False, True)
    assert from_environment({"WORLD_SIZE": "1", "RANK": "0"}) == Distributed()


def test_torchruns_variables_give_the_place_and_bad_ones_say_which():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    d = from_environment(env)
    assert (d.rank, d.world_size, d.local_rank, d.local_world_size) == (3, 4, 1, 2)
    assert d.active and not d.is_main
    with pytest.raises(TrainingError, match="RANK='x' in the environment is not a whole number"):
        from_environment({**env, "RANK": "x"})
    with pytest.raises(TrainingError, match="RANK=4 of WORLD_SIZE=4"):
        from_environment({**env, "RANK": "4"})
    with pytest.raises(TrainingError, match="ATTENTION_EXPLORER_DIST_TIMEOUT='0'"):
        from_environment({**env, "ATTENTION_EXPLORER_DIST_TIMEOUT": "0"})


def test_threads_default_to_the_cores_shared_between_a_machines_processes():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert Distributed().default_threads() == 0  # one process: torch's own default
    two = Distributed(rank=1, world_size=4, local_rank=1, local_world_size=2)
    assert two.default_threads() == max(1, cores // 2)


def _model_and_data():
    torch.manual_seed(0)
    config = make_config(
        "bahdanau", src_vocab=30, tgt_vocab=30, emb_dim=8, hidden_dim=8, dropout=0.0
    )
    model = build_model(config)
    g = torch.Generator().manual_seed(1)
    src = [torch.randint(4, 30, (int(n),), generator=g).tolist() for n in range(2, 9)]
    tgt = [torch.randint(4, 30, (int(n),), generator=g).tolist() for n in range(9, 2, -1)]
    return model, src, tgt


def _gradients(model, idx, src, tgt, world_size: int) -> dict[str, torch.Tensor]:
    """The gradients DistributedDataParallel would hold: the mean over the processes of each
    process's gradient of its share's loss."""
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    engine = Scheduled(model).eval()  # no dropout
    model.zero_grad()
    for rank in range(world_size):
        place = Distributed(rank=rank, world_size=world_size, local_world_size=world_size)
        batch = make_batch(idx, src, tgt, place, torch.device("cpu"))
        logits = engine(batch.src, batch.src_len, batch.tgt_in, 1.0)
        summed = loss_fn(logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1))
        (share_of_loss(summed, batch, world_size) / world_size).backward()
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def test_each_process_trains_on_every_nth_sentence_of_the_batch():
    _, src, tgt = _model_and_data()
    idx = [6, 0, 3, 5, 1]
    for rank, expected in ((0, [6, 3, 1]), (1, [0, 5])):
        batch = make_batch(idx, src, tgt, Distributed(rank, 2), torch.device("cpu"))
        assert batch.src_len.tolist() == [len(src[i]) for i in expected]
        assert batch.weight == 1.0 and batch.tokens == sum(len(tgt[i]) for i in idx)
    # more processes than sentences: the last one computes a stand-in that counts zero times
    batch = make_batch([2, 4], src, tgt, Distributed(2, 3), torch.device("cpu"))
    assert batch.weight == 0.0 and batch.src.shape[0] == 1


@pytest.mark.parametrize("world_size", [2, 3, 8])
def test_the_shares_gradients_average_to_the_whole_batchs_gradient(world_size):
    model, src, tgt = _model_and_data()
    idx = [6, 0, 3, 5, 1, 2, 4]
    whole = _gradients(model, idx, src, tgt, 1)
    shared = _gradients(model, idx, src, tgt, world_size)
    for name, g in whole.items():
        torch.testing.assert_close(shared[name], g, rtol=1e-5, atol=1e-7, msg=name)


def _torchrun(tmp_path: Path, fail: str, args: list[str], timeout_s: float = 60):
    marks = tmp_path / f"marks-{len(list(tmp_path.glob('marks-*')))}"
    marks.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "ATTENTION_EXPLORER_DIST_TIMEOUT": str(timeout_s),
    }
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # 127.0.0.1 only
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
         "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", "--max-restarts=0",
         str(ROOT / "tests" / "ddp_worker.py"), str(marks), fail, *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240,
    )  # fmt: skip
    notes = {
        rank: (marks / f"rank{rank}.txt").read_text().split("\n")[:-1]
        if (marks / f"rank{rank}.txt").exists()
        else []
        for rank in (0, 1)
    }
    return proc, notes


def _history(path: Path, key: str) -> list[float]:
    return [h[key] for h in load_checkpoint(path).history if "loss" in h]


@needs_gloo
def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    one, two = tmp_path / "one" / "m.safetensors", tmp_path / "two" / "m.safetensors"
    one.parent.mkdir(), two.parent.mkdir()
    # the one-process reference runs as the torchrun processes do: its own process, one thread
    # (in this process, threads and state left by earlier tests changed its rounding)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for args in ([*TRAIN, "--steps", "12", "--out", str(one)],
                 ["train", "--resume", str(one), "--steps", "18", "--quiet"]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "explorer", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=240)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]

    proc, notes = _torchrun(tmp_path, "-", [*TRAIN, "--steps", "12", "--out", str(two)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # rank 0 alone evaluates (steps 0, 6, 12) and saves (steps 6, 12); rank 1 only trains
    # at 0, 6 (and save), 12 (the periodic save, then the final evaluation and save)
    events = ["evaluate", "evaluate", "save", "save", "evaluate", "save"]
    assert [n for n in notes[0] if not n.startswith("batch")] == events
    assert [n for n in notes[1] if not n.startswith("batch")] == []
    shares = [[tuple(map(int, n.split()[1:])) for n in notes[r] if "batch" in n] for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 12
    for (size0, share0), (size1, share1) in zip(*shares):
        assert size0 == size1 and share0 + share1 == size0 and share0 - share1 in (0, 1)

    proc, notes = _torchrun(
        tmp_path, "-", ["train", "--resume", str(two), "--steps", "18", "--quiet"]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in two.parent.iterdir()) == ["m.safetensors"]  # nothing else
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marks-0", "marks-1", "one", "two"]

    ck = load_checkpoint(two)  # what the app loads
    assert ck.train_state["step"] == 18 and ck.train_state["world_size"] == 2
    assert "world_size     2" in format_card(read_card(two)).splitlines()
    # Same losses and gradient norms at every step, within float32 rounding: the two runs add
    # the same numbers in different orders (two shards' sums, then an all-reduce; padding to
    # each shard's own length changes the kernels' blocking) and Adam carries the differences
    # on. Measured: at most 2e-7 relative over 30 steps; 1e-4 leaves room and still fails for a
    # gradient of the wrong size (the logged gradient norm) or a batch trained twice.
    for key in ("loss", "grad_norm"):
        expected = _history(one, key)
        assert len(expected) == 18
        assert _history(two, key) == pytest.approx(expected, rel=1e-4), key
    for name, w in load_checkpoint(one).model.state_dict().items():
        torch.testing.assert_close(ck.model.state_dict()[name], w, rtol=1e-4, atol=1e-4)


@needs_gloo
def test_a_process_that_stops_answering_ends_the_run_with_a_message(tmp_path):
    out = tmp_path / "m.safetensors"
    args = [*TRAIN, "--steps", "12", "--eval-every", "0", "--checkpoint-every", "0"]
    proc, _ = _torchrun(tmp_path, "1:3:hang", [*args, "--out", str(out)], timeout_s=5)
    assert proc.returncode != 0
    assert "error: rank 0 of 2: lost contact with the other training processes" in proc.stderr
    assert "did not answer within 5 s" in proc.stderr
    # rank 0 keeps the model of the last step both processes finished, and says where
    assert f"is saved in {out}" in proc.stderr and out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".safetensors") == [out.name]
