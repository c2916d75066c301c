# Sourced by the scripts: puts a CUDA toolkit on PATH when one is installed.
for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
  if [ -x "$d/nvcc" ]; then PATH="$d:$PATH"; break; fi
done
export PATH
