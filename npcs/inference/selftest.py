"""`python -m npcs.inference.selftest`: can this llama-cpp-python build run the default model?

Evaluates a multi-token prompt in a child process and exits non-zero if that crashes. A build compiled with
-march=native can pick kernels (AVX-512, AMX) that a virtual machine advertises but does not allow, and those
crash on the first prompt; ./dev runs this after installing and rebuilds portably if it fails.
"""

import subprocess
import sys

from npcs.inference.models import check_model, default_model_path

PROBE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, n_threads=1, verbose=False)
out = llm("Once upon a time in the land of the llamas there lived a king who", max_tokens=4, temperature=0)
print(repr(out["choices"][0]["text"]))
"""


def main() -> int:
    path = default_model_path()
    check_model(path)
    result = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        print(f"selftest: llama-cpp-python crashed evaluating a prompt (exit code {result.returncode})",
              file=sys.stderr)
        return 1
    print(f"selftest: llama-cpp-python runs {path.name}: {result.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
