"""Drive a server with wrk (one thread, pinned to the client CPU) and parse what it prints."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

PIPELINE_LUA = """\
init = function(args)
  local r = {}
  for i = 1, tonumber(args[1]) do r[i] = wrk.format() end
  req = table.concat(r)
end
request = function() return req end
"""

UPLOAD_LUA = """\
wrk.method = "POST"
wrk.body = string.rep("x", tonumber(os.getenv("BENCH_BODY_SIZE") or "1048576"))
wrk.headers["Content-Type"] = "application/octet-stream"
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def available() -> bool:
    return shutil.which("wrk") is not None


def write_scripts(folder: Path) -> dict[str, Path]:
    """Write the Lua scripts into ``folder``; return their paths by name."""
    paths = {"pipeline": folder / "pipeline.lua", "upload": folder / "upload.lua"}
    paths["pipeline"].write_text(PIPELINE_LUA)
    paths["upload"].write_text(UPLOAD_LUA)
    return paths


def run(
    url: str,
    seconds: float,
    connections: int,
    *,
    pin: list[str],
    script: Path | None = None,
    script_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """Run wrk once; return requests, duration, rps, latency percentiles and errors."""
    cmd = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    cmd += ["--timeout", "10s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    return parse(proc.stdout + proc.stderr)


def parse(out: str) -> dict:
    """The figures of one wrk report (``requests`` is 0 when nothing completed)."""
    result: dict = {"requests": 0, "non_2xx": 0, "socket_errors": {}, "latency_ms": {}}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if m:
        result["requests"] = int(m.group(1))
        result["seconds"] = float(m.group(2)) * _UNITS[m.group(3)] / 1e3
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        result["rps"] = float(m.group(1))
    for pct, value, unit in re.findall(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M):
        result["latency_ms"][f"p{pct}"] = float(value) * _UNITS[unit]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        result["non_2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        names = ("connect", "read", "write", "timeout")
        counts = zip(names, map(int, m.groups()), strict=True)
        result["socket_errors"] = {k: v for k, v in counts if v}
    if not result["requests"]:
        result["output"] = out.strip()[-2000:]
    return result
