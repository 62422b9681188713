#!/usr/bin/env python3
"""Time terrarium lint and hadolint on the same files (best of several runs) and print
files/second, the ratio, and single-file latency including process start."""

import argparse
import pathlib
import statistics
import subprocess
import time


def best_of(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--terrarium", required=True)
    parser.add_argument("--hadolint", required=True)
    parser.add_argument("--corpus", type=pathlib.Path, required=True)
    parser.add_argument("--typical", required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    dockerfiles = sorted(str(p) for p in (args.corpus / "dockerfiles").glob("*.Dockerfile"))
    composes = sorted((args.corpus / "compose").glob("*.yaml"))
    n = len(dockerfiles)
    version = subprocess.run([args.hadolint, "--version"], capture_output=True, text=True).stdout.strip()

    hadolint = best_of([args.hadolint, "--no-fail", *dockerfiles], args.runs)
    terrarium = best_of([args.terrarium, "lint", "--format", "json", *dockerfiles], args.runs)
    everything = best_of([args.terrarium, "lint", "--format", "json", str(args.corpus)], args.runs)

    latencies = []
    for _ in range(200):
        start = time.perf_counter()
        subprocess.run([args.terrarium, "lint", "--format", "json", args.typical], stdout=subprocess.DEVNULL, check=False)
        latencies.append(time.perf_counter() - start)

    print(f"corpus: {n} Dockerfiles, {len(composes)} compose files")
    print(f"hadolint ({version}): {n} Dockerfiles in {hadolint:.3f} s = {n / hadolint:,.0f} files/s")
    print(f"terrarium lint:       {n} Dockerfiles in {terrarium:.3f} s = {n / terrarium:,.0f} files/s")
    print(f"ratio: terrarium is {hadolint / terrarium:.0f}x hadolint's throughput (target >= 50x)")
    total = n + len(composes)
    print(f"terrarium lint, whole corpus (discovery + Dockerfiles + compose): {total} files in {everything:.3f} s = {total / everything:,.0f} files/s")
    print(
        f"one typical Dockerfile, process start included (200 runs): median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {sorted(latencies)[int(len(latencies) * 0.95)] * 1000:.1f} ms (target < 10 ms)"
    )


if __name__ == "__main__":
    main()
