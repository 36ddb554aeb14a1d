# Sourced by the benchmarks/gpu_*.sh jobs: a lent GPU machine has torch but no internet and no
# diffusers, so the wheels travel in .wheels/ (not committed; on a machine with PyPI access:
#   pip download --no-deps -d .wheels --python-version 3.12 --platform manylinux2014_x86_64 \
#     --only-binary=:all: -r benchmarks/gpu_wheels.txt
# ). NVLink multicast stays off on shared multi-GPU hosts.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps .wheels/*.whl 2>&1 | grep -v WARNING || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
export PYTHONPATH=$PWD
out=${OUT:-/tmp}
