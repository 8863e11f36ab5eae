"""One process of a test's torchrun run: ``attention-explorer train``, noting in a folder which
ranks evaluate and write checkpoints, and failing on request.

    python -m torch.distributed.run --nproc_per_node=2 tests/ddp_worker.py MARKS FAIL train …

MARKS is the folder for the notes (one file per rank, one line per evaluation, per save, and per
batch: ``batch SENTENCES SHARE``); FAIL is
``-``, ``RANK:STEP`` (that process raises an error when it builds that step's batch) or
``RANK:STEP:hang`` (it stops answering there instead).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> int:
    from explorer.__main__ import main as explorer_main
    from explorer.seq2seq import checkpoint
    from explorer.seq2seq.training import train

    marks, fail, argv = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    rank = int(os.environ["RANK"])
    note = marks / f"rank{rank}.txt"

    def noting(what, real):
        def wrapper(*args, **kwargs):
            with note.open("a") as f:
                f.write(what + "\n")
            return real(*args, **kwargs)

        return wrapper

    checkpoint.save_checkpoint = noting("save", checkpoint.save_checkpoint)
    train.validation_loss = noting("evaluate", train.validation_loss)
    real_make_batch = train.make_batch

    def noting_batch(idx, *args, **kwargs):
        batch = real_make_batch(idx, *args, **kwargs)
        with note.open("a") as f:
            f.write(f"batch {len(idx)} {int(batch.weight) * batch.src.shape[0]}\n")
        return batch

    train.make_batch = noting_batch
    if fail != "-" and int(fail.split(":")[0]) == rank:
        at, hang = int(fail.split(":")[1]), fail.endswith(":hang")
        real_batch, count = train.make_batch, [0]

        def failing_batch(*args, **kwargs):
            count[0] += 1
            if count[0] == at and hang:
                time.sleep(600)
            if count[0] == at:
                raise ValueError(f"injected failure on rank {rank} at step {at}")
            return real_batch(*args, **kwargs)

        train.make_batch = failing_batch
    return explorer_main(argv)


if __name__ == "__main__":
    sys.exit(main())
