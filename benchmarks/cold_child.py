"""Runs inside a fresh `python3.13 -I -S -B` process: import one handler as Lambda would.

argv: JSON list of sys.path entries (function code first, then the layer, then
the runtime's boto3), the handler module, the handler name. Prints one JSON
line: milliseconds (wall and CPU) from this script's first line to "handler
importable and module-level initialisation done". Only the standard library is used here.
"""

import importlib
import json
import sys
import time

started = time.perf_counter()
cpu_started = time.process_time()
sys.path[0:0] = json.loads(sys.argv[1])
module = importlib.import_module(sys.argv[2])
handler = getattr(module, sys.argv[3])
if not callable(handler):
    raise SystemExit(f"{sys.argv[2]}.{sys.argv[3]} is not callable")
import_ms = (time.perf_counter() - started) * 1000
cpu_ms = (time.process_time() - cpu_started) * 1000
print(json.dumps({"import_ms": import_ms, "import_cpu_ms": cpu_ms, "modules": len(sys.modules)}))
