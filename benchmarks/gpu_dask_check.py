"""On a multi-GPU host: does `search.distributed` give each worker exactly one, distinct GPU?

    python3 -m pip install -q --no-index --no-deps .wheels/*.whl   # see gpu_wheels.txt
    PYTHONPATH=$PWD python3 benchmarks/gpu_dask_check.py

Prints one line per task (worker pid, CUDA_VISIBLE_DEVICES, devices seen, device UUID, matmul
time) and exits non-zero unless every worker saw one device and no two workers shared one.
"""

import os
import sys
import time


def work(item):
    import torch

    x = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        x @ x
    torch.cuda.synchronize()
    return {"item": item, "pid": os.getpid(), "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "devices": torch.cuda.device_count(), "uuid": str(torch.cuda.get_device_properties(0).uuid),
            "matmul_s": round(time.perf_counter() - start, 4)}


if __name__ == "__main__":  # workers are spawned processes: they re-import this file
    from search.distributed import cuda_device_count, run_on_cluster

    records = []
    started = time.monotonic()
    report = run_on_cluster(range(4 * cuda_device_count()), work, lambda _, r: records.append(r))
    print(f"{report.workers} workers, {len(report.done)} done, {len(report.failed)} failed, "
          f"{time.monotonic() - started:.1f} s")
    for record in records:
        print(record)
    uuid_of = {r["pid"]: r["uuid"] for r in records}
    pinned = all(r["devices"] == 1 for r in records) and len(set(uuid_of.values())) == len(uuid_of)
    sys.exit(0 if pinned and not report.failed else 1)
