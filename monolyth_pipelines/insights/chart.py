"""The runs chart shown with each materialisation: completed vs failed runs per provider."""

from __future__ import annotations

import base64
import io
from datetime import date

import matplotlib

matplotlib.use("Agg")  # no display in a run worker
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd


def runs_chart_png(runs: pd.DataFrame, last_day: date, days: int = 30) -> bytes:
    """A PNG of daily completed and failed runs per provider over the ``days`` ending ``last_day``
    (rows of insights_sync_runs_daily). Days without runs show as zero, so the window always reads
    as the same 30 days, whatever history exists."""
    window = pd.date_range(end=pd.Timestamp(last_day), periods=days, freq="D")
    fig, ax = plt.subplots(figsize=(8, 3), dpi=80)
    try:
        if runs.empty:
            ax.text(0.5, 0.5, "no runs in this window", ha="center", va="center", transform=ax.transAxes)
        else:
            frame = runs.assign(day=pd.to_datetime(runs["day"]))
            per_day = frame.groupby(["provider", "day"])[["runs_completed", "runs_failed"]].sum()
            providers = sorted(per_day.index.get_level_values("provider").unique())
            width = 0.8 / len(providers)
            for i, provider in enumerate(providers):
                series = per_day.loc[provider].reindex(window, fill_value=0)
                x = mdates.date2num(window) - 0.4 + (i + 0.5) * width
                ax.bar(x, series["runs_completed"], width, label=f"{provider} completed")
                ax.bar(
                    x,
                    series["runs_failed"],
                    width,
                    bottom=series["runs_completed"],
                    label=f"{provider} failed",
                )
            ax.legend(fontsize=7, loc="upper left")
        ax.set_xlim(mdates.date2num(window[0]) - 1, mdates.date2num(window[-1]) + 1)
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=5))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("runs")
        ax.set_title(f"Connector runs per day, {window[0]:%Y-%m-%d} to {last_day:%Y-%m-%d} (UTC)", fontsize=9)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def runs_chart_markdown(runs: pd.DataFrame, last_day: date, days: int = 30) -> str:
    """The chart inlined as a data URI: the Dagster UI's Markdown renders ``data:`` images."""
    encoded = base64.b64encode(runs_chart_png(runs, last_day, days)).decode()
    return f"![completed vs failed runs per provider](data:image/png;base64,{encoded})"
