"""The runs chart shown with each materialisation: completed vs failed runs per provider."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display in a run worker
import matplotlib.pyplot as plt
import pandas as pd


def runs_chart_png(runs: pd.DataFrame) -> bytes:
    """A PNG of daily completed and failed runs per provider (rows of insights_sync_runs_daily)."""
    fig, ax = plt.subplots(figsize=(7, 3), dpi=80)
    try:
        if runs.empty:
            ax.text(0.5, 0.5, "no runs in this window", ha="center", va="center")
        else:
            per_day = runs.groupby(["day", "provider"])[["runs_completed", "runs_failed"]].sum().reset_index()
            for provider, rows in per_day.groupby("provider"):
                ax.plot(rows["day"], rows["runs_completed"], marker="o", label=f"{provider} completed")
                ax.plot(
                    rows["day"], rows["runs_failed"], marker="x", linestyle="--", label=f"{provider} failed"
                )
            ax.legend(fontsize=7)
            fig.autofmt_xdate()
        ax.set_ylabel("runs")
        ax.set_title("Connector runs per day (last 30 days)", fontsize=9)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def runs_chart_markdown(runs: pd.DataFrame) -> str:
    """The chart inlined as a data URI: the Dagster UI's Markdown renders ``data:`` images."""
    encoded = base64.b64encode(runs_chart_png(runs)).decode()
    return f"![completed vs failed runs per provider](data:image/png;base64,{encoded})"
