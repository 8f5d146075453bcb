"""The benchmarks' summary (bench.py's ``summary.json``) as text: one line per ratio, with the
targets of the performance issue (PERFORMANCE.md)."""

from __future__ import annotations


def _peer_lines(s: dict) -> list[str]:
    """A ``fit`` or ``pde`` comparison: the speed-ups against each peer and our tracking overhead."""
    what = f"{s['experiment']} ({s['steps']} steps, {s['seeds']} seeds)"
    lines = []
    for peer, p in s["peers"].items():
        lines.append(
            f"  {what}: vs {peer}: x{p['speedup_tracking_cpu_median']:.2f} "
            f"[x{p['speedup_tracking_wall_median']:.2f}] with our tracking on, "
            f"x{p['speedup_training_cpu_median']:.2f} "
            f"[x{p['speedup_training_wall_median']:.2f}] without (target >= 2); rel. L2 error "
            f"{s['ours_final_rel_l2_median']:.3g} (ours) vs {p['peer_final_rel_l2_median']:.3g}"
        )
    lines.append(
        f"  {what}: tracking overhead ({s['measurements']} measurements): "
        f"{100 * s['overhead_inrun_cpu_median']:.1f} % of the training CPU time within the run; "
        f"{100 * s['overhead_cpu_median']:.1f} % [{100 * s['overhead_wall_median']:.1f} %] against the run "
        "measuring at the ends only (target <= 3 %)"
    )
    if "overhead_parts_median" in s:
        p = s["overhead_parts_median"]
        lines.append(
            f"    of which eps-rank {100 * (p['forward'] + p['spectra']):.1f} % (forward pass on the rank and "
            f"error points {100 * p['forward']:.1f} %, Gram spectra {100 * p['spectra']:.1f} %), loss "
            f"{100 * p['loss']:.1f} %, loss lower bound {100 * p['bound']:.1f} %, recording "
            f"{100 * p['other']:.1f} %, outside the measurements (start-up, loop) {100 * p['outside']:.1f} %"
        )
    return lines


def _schedule_lines(s: dict) -> list[str]:
    lines = [
        f"  {s['experiment']}: measurement schedules (one measurement {s['measurement_cpu_ms']:.1f} ms CPU, "
        f"one step {s['step_cpu_ms']:.2f} ms): measurements, estimated overhead, stairs found"
    ]
    for r in s["schedules"]:
        lines.append(
            f"    {r['schedule']:>12}: {r['measurements']:5d}, {100 * r['overhead_estimated']:6.1f} %, "
            f"{r['stairs_per_seed']} ({100 * r['stairs_found']:.0f} % of every step's)"
        )
    return lines


def _tracker_lines(t: dict) -> list[str]:
    p = t["overhead_parts_median"]
    return [
        f"  {t['experiment']} ({t['steps']} steps, {t['seeds']} seeds): staircase.Tracker in a plain PyTorch loop "
        f"({t['measurements']} measurements on {t['rank_points']} points): overhead "
        f"x{1 + t['overhead_cpu_median']:.3f} CPU [x{1 + t['overhead_wall_median']:.3f} wall] against the "
        f"untracked loop, {100 * t['overhead_inrun_cpu_median']:.1f} % in-run (forward {100 * p['forward']:.1f} %, "
        f"spectra {100 * p['spectra']:.1f} %, bound {100 * p['bound']:.1f} %); training unchanged: "
        f"{t['same_final_losses']}"
    ]


def _gpu_lines(g: dict) -> list[str]:
    if "skipped" in g:
        return [f"  gpu: skipped ({g['skipped']})"]
    return [
        f"  gpu ({g['device_name']}): {g['n_models']} stacked models vs one naive model: "
        f"x{g['speedup_wall_median']:.1f} throughput, x{g['speedup_cuda_graph_wall_median']:.1f} with a "
        "CUDA graph (target >= 20)"
    ]


# each section of the summary and its lines, in the order of the report
SECTIONS = (
    ("fit", _peer_lines),
    ("pde", _peer_lines),
    ("schedule_fit", _schedule_lines),
    ("schedule_pde", _schedule_lines),
    ("tracker", _tracker_lines),
)


def report(summary: dict) -> str:
    """The ratios, one line each, with the targets of the performance issue."""
    lines = ["", "benchmark ratios: steps/s per model, ours over theirs (median of the repeats, CPU time [wall])"]
    m = summary.get("machine") or {}
    if m.get("cpu_model"):  # a ratio from one kind of CPU is not another's (PERFORMANCE.md: a row per kind)
        flags = ", ".join(m.get("cpu_flags") or []) or "none of " + ", ".join(("avx512f", "avx2"))
        lines.append(f"  on {m['cpu_model']} ({m.get('nproc')} cores; flags: {flags})")
    for name, lines_of in SECTIONS:
        if summary.get(name) is not None:
            lines += lines_of(summary[name])
    for key, why in summary.get("skipped", {}).items():
        lines.append(f"  {key}: skipped ({why})")
    if summary.get("gpu") is not None:
        lines += _gpu_lines(summary["gpu"])
    return "\n".join(lines)
