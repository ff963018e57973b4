"""The study's figures (seaborn), each returned as a matplotlib Figure and saved as PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .evaluation import METHOD_ORDER

__all__ = ["save", "accuracy_by_entropy", "reliability_heatmap", "entropy_histogram", "method_comparison", "agreement_bars",
           "weight_distribution", "summary_figure", "mode_figure", "seed_figure", "position_figure", "score_report", "threshold_sweep"]

sns.set_theme(style="whitegrid", context="notebook")


def save(fig, run_dir: str | Path, name: str) -> Path:
    """Write ``fig`` to ``<run_dir>/figures/<name>.png`` and return the path."""
    path = Path(run_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def accuracy_by_entropy(by_entropy: pd.DataFrame, title: str = "") -> plt.Figure:
    """Weak-label accuracy per entropy value, with the number of rows on each bar
    (the paper's Figures 3 and 5)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    labels = [f"{e:.3f}" for e in by_entropy["entropy"]]
    sns.barplot(x=labels, y=by_entropy["accuracy"], ax=ax, color=sns.color_palette()[0])
    for i, (acc, n) in enumerate(zip(by_entropy["accuracy"], by_entropy["rows"])):
        ax.annotate(f"n={n}", (i, acc), ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
    ax.set(xlabel="entropy H(x) of the K weak answers (nats)", ylabel="weak-label accuracy", ylim=(0, 1.08),
           title=title or "Weak-label accuracy by the entropy of the K weak answers")
    fig.tight_layout()
    return fig


def reliability_heatmap(matrix: pd.DataFrame, title: str = "") -> plt.Figure:
    """Mean reliability by weak answer and ground truth (the paper's Figures 4 and 6)."""
    fig, ax = plt.subplots(figsize=(4.8, 4))
    sns.heatmap(matrix, annot=True, fmt=".2f", cmap="viridis", vmin=0, vmax=1, ax=ax,
                cbar_kws={"label": "mean reliability r(a|x)"})
    ax.set(xlabel="ground truth", ylabel="weak answer", title=title or "Mean reliability (diagonal: right weak labels)")
    fig.tight_layout()
    return fig


def entropy_histogram(table: pd.DataFrame, tau: float) -> plt.Figure:
    """How many questions have each entropy, by whether the canonical weak label is right, with
    the filter's threshold."""
    canonical = table[table["variation"] == 0].assign(
        label=lambda t: np.where(t["correct"], "weak label right", "weak label wrong"),
        H=lambda t: t["entropy"].round(3).map(lambda e: f"{e:.3f}"))
    order = sorted(canonical["H"].unique(), key=float)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sns.countplot(data=canonical, x="H", hue="label", order=order, ax=ax,
                  hue_order=["weak label right", "weak label wrong"], palette=["tab:green", "tab:red"])
    kept = [i for i, h in enumerate(order) if float(h) <= tau + 1e-9]
    if kept:
        ax.axvline(max(kept) + 0.5, color="black", ls="--", lw=1)
        ax.annotate(f" kept: H <= tau = {tau:.3f}", (max(kept) + 0.5, ax.get_ylim()[1] * 0.92), fontsize=9)
    ax.set(xlabel="entropy H(x)", ylabel="questions of B", title="Entropy of the weak answers; the filter keeps the left of the line")
    fig.tight_layout()
    return fig


def method_comparison(results: pd.DataFrame, title: str = "", strong_zero_shot: float | None = None) -> plt.Figure:
    """Test accuracy per method with the weak supervisor, the ceiling and (optionally) the strong
    model's zero-shot accuracy as lines, PGR on the bars."""
    r = results.drop(index=["weak"], errors="ignore")
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = ["tab:gray" if m in ("naive", "ceiling") else sns.color_palette()[0] for m in r.index]
    sns.barplot(x=list(r.index), y=r["accuracy"], ax=ax, palette=colors, hue=list(r.index), legend=False)
    if {"acc_lo", "acc_hi"} <= set(r.columns):  # 95% bootstrap interval over the test questions
        err = np.vstack([r["accuracy"] - r["acc_lo"], r["acc_hi"] - r["accuracy"]]).astype(float)
        ax.errorbar(np.arange(len(r)), r["accuracy"], yerr=err, fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    if "weak" in results.index:
        ax.axhline(results.loc["weak", "accuracy"], color="tab:red", ls="--", lw=1.2, label="weak supervisor")
    if "ceiling" in r.index:
        ax.axhline(r.loc["ceiling", "accuracy"], color="tab:green", ls=":", lw=1.2, label="ceiling")
    if strong_zero_shot is not None:
        ax.axhline(strong_zero_shot, color="tab:purple", ls="-.", lw=1, label="strong model, zero-shot")
    for i, (acc, p) in enumerate(zip(r["accuracy"], r["pgr"])):
        txt = f"{acc:.3f}" + ("" if p is None or (isinstance(p, float) and math.isnan(p)) else f"\nPGR {p:.2f}")
        ax.annotate(txt, (i, acc), ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    lo = min(r.get("acc_lo", r["accuracy"]).min(), results["accuracy"].min())
    ax.set(ylim=(max(0, lo - 0.1), min(1.0, r.get("acc_hi", r["accuracy"]).max() + 0.1)), ylabel="accuracy on C",
           title=title or "Strong model trained on weak labels, by method")
    ax.tick_params(axis="x", rotation=25)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def agreement_bars(profile: pd.DataFrame) -> plt.Figure:
    """Questions by number of distinct weak answers, with the canonical label's accuracy on each bar."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    sns.barplot(x=[str(i) for i in profile.index], y=profile["questions"], ax=ax, color=sns.color_palette()[0])
    for i, (n, acc) in enumerate(zip(profile["questions"], profile["canonical_label_accuracy"])):
        ax.annotate(f"acc {acc:.2f}", (i, n), ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
    ax.set(xlabel="distinct weak answers over the K variations", ylabel="questions of B",
           title="How often the weak supervisor changes its mind")
    fig.tight_layout()
    return fig


def weight_distribution(table: pd.DataFrame) -> plt.Figure:
    """Reliability weights of right and wrong weak labels."""
    t = table.assign(label=np.where(table["correct"], "weak label right", "weak label wrong"))
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    sns.histplot(data=t, x="reliability", hue="label", bins=20, binrange=(0, 1), multiple="dodge", shrink=0.85,
                 hue_order=["weak label right", "weak label wrong"], palette=["tab:green", "tab:red"], ax=ax)
    ax.set(xlabel="row weight r(a_k|x)", ylabel="rows of B", title="Row weights of right and wrong weak labels")
    fig.tight_layout()
    return fig



def _grouped_bars(ax, data: pd.DataFrame, value: str, lo: str, hi: str, order: list[str], palette: dict) -> None:
    """Bars of ``value`` per (label, method) with error bars from ``lo`` to ``hi`` where given."""
    labels = list(dict.fromkeys(data["label"]))
    methods = [m for m in order if m in set(data["method"])]
    width = 0.8 / max(len(methods), 1)
    for j, m in enumerate(methods):
        d = data[data["method"] == m].set_index("label").reindex(labels)
        x = np.arange(len(labels)) - 0.4 + width * (j + 0.5)
        y = d[value].to_numpy(float)
        ax.bar(x, y, width, color=palette[m], label=m)
        err = np.vstack([y - d[lo].to_numpy(float), d[hi].to_numpy(float) - y])
        ok = ~np.isnan(err).any(0)
        if ok.any():
            ax.errorbar(x[ok], y[ok], yerr=err[:, ok], fmt="none", ecolor="black", elinewidth=0.8, capsize=1.5)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=25, ha="right")


def summary_figure(long: pd.DataFrame, runs: pd.DataFrame, iv: pd.DataFrame | None = None) -> plt.Figure:
    """Across studies (a params file's runs over seeds): accuracy and PGR per method with 95%
    bootstrap intervals where ``iv`` (:func:`relalign.summary.intervals`) has them, and the AUROC
    of the reliability scores (mean over seeds)."""
    mean = long.groupby(["dataset", "study", "method"], as_index=False)[["accuracy", "pgr"]].mean()
    data = mean.assign(acc_lo=np.nan, acc_hi=np.nan, pgr_lo=np.nan, pgr_hi=np.nan)
    if iv is not None and not iv.empty:
        keyed = iv.set_index(["dataset", "study", "method"])
        have = data.set_index(["dataset", "study", "method"]).index.isin(keyed.index)
        data = pd.concat([data[~have], iv[[c for c in data.columns if c in iv.columns]]], ignore_index=True)
    data["label"] = data["dataset"] + "/" + data["study"]
    data = data.sort_values("label", kind="stable")
    order = [m for m in METHOD_ORDER if m in set(data["method"])] + sorted(set(data["method"]) - set(METHOD_ORDER))
    palette = dict(zip(order, sns.color_palette("tab10", n_colors=max(len(order), 10))))
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6), gridspec_kw={"width_ratios": [3, 3, 1.6]})
    _grouped_bars(axes[0], data, "accuracy", "acc_lo", "acc_hi", order, palette)
    axes[0].set(ylabel="accuracy on C", ylim=(0, 1), title="Accuracy by method (95% CI)")
    pgr = data[~data["method"].isin(["weak", "ceiling"])]
    _grouped_bars(axes[1], pgr, "pgr", "pgr_lo", "pgr_hi", order, palette)
    axes[1].axhline(0, color="black", lw=0.8)
    axes[1].axhline(1, color="tab:green", ls=":", lw=1)
    axes[1].set(ylabel="PGR", title="Performance gap recovered (1 = ceiling)")
    scores = [c for c in ("entropy_auroc", "reliability_auroc", "mean_prob_auroc") if c in runs.columns]
    auroc = runs.assign(label=runs["dataset"] + "/" + runs["study"]).melt(
        id_vars="label", value_vars=scores, var_name="score", value_name="AUROC").dropna()
    auroc["score"] = auroc["score"].str.replace("_auroc", "")
    sns.barplot(data=auroc, x="label", y="AUROC", hue="score", ax=axes[2], errorbar=None)
    axes[2].axhline(0.5, color="black", ls="--", lw=0.8)
    axes[2].set(xlabel="", ylim=(0, 1), title="Wrong vs right weak labels")
    for label in axes[2].get_xticklabels():
        label.set(rotation=25, ha="right")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[2].legend(fontsize=7, loc="lower right")
    fig.legend(handles, labels, loc="lower center", ncols=min(len(labels), 9), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def mode_figure(iv: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """Each method's difference from naive (points of accuracy on C, 95% bootstrap interval), one
    panel per dataset, one marker row per study, coloured by how it trained the strong model (head or
    LoRA, the same colour in every panel); ``iv``: :func:`relalign.summary.intervals`, ``runs``: :func:`relalign.summary.runs_table`."""
    compared = iv[~iv["method"].isin(["weak", "naive", "ceiling"])]
    datasets = sorted(compared["dataset"].unique())
    fig, axes = plt.subplots(1, max(len(datasets), 1), figsize=(4.2 * max(len(datasets), 1), 4.2), squeeze=False,
                             sharey=True)
    mode = runs.groupby(["dataset", "study"])["mode"].first()
    colour = dict(zip(sorted(set(mode)), sns.color_palette("tab10")))  # one colour per mode, in every panel
    methods = [m for m in METHOD_ORDER if m in set(compared["method"])]
    for ax, dataset in zip(axes[0], datasets):
        d = compared[compared["dataset"] == dataset]
        studies = sorted(d["study"].unique())
        for j, study in enumerate(studies):
            g = d[d["study"] == study].set_index("method").reindex(methods)
            y = np.arange(len(methods)) + (j - (len(studies) - 1) / 2) * 0.25
            how = mode.get((dataset, study), "?")
            ax.errorbar(g["diff"], y, xerr=[g["diff"] - g["diff_lo"], g["diff_hi"] - g["diff"]], fmt="o", capsize=3,
                        color=colour.get(how), label=f"{study} ({how})")
        ax.axvline(0, color="black", lw=0.8)
        ax.set(title=dataset, xlabel="difference from naive (points)", yticks=np.arange(len(methods)),
               yticklabels=methods)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, frameon=False)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    return fig


def seed_figure(long: pd.DataFrame, studies: list[tuple[str, str]]) -> plt.Figure:
    """Each seed's accuracy on C per method, one line per seed and one panel per (dataset, study) of
    ``studies``: how far the seeds spread, and whether a method's gain over naive is the same in every
    seed or comes from naive faltering in some (``long``: :func:`relalign.summary.methods_long`)."""
    fig, axes = plt.subplots(1, max(len(studies), 1), figsize=(4.6 * max(len(studies), 1), 4.0), squeeze=False,
                             sharey=True)
    for ax, (dataset, study) in zip(axes[0], studies):
        d = long[(long["dataset"] == dataset) & (long["study"] == study)]
        methods = [m for m in METHOD_ORDER if m in set(d["method"]) and not m.startswith("kept_")]
        for seed, g in d.groupby("seed"):
            ax.plot(np.arange(len(methods)), g.set_index("method")["accuracy"].reindex(methods), marker="o", lw=1,
                    alpha=0.8, label=f"seed {seed}")
        ax.set(title=f"{dataset}/{study}", xticks=np.arange(len(methods)), ylabel="accuracy on C")
        ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=8)
        ax.legend(fontsize=7, ncols=2)
    fig.tight_layout()
    return fig


def position_figure(positions: pd.DataFrame, studies: list[tuple[str, str]]) -> plt.Figure:
    """Each seed's accuracy on C against the share of C it answered at the weak labels' favourite
    position, one panel per (dataset, study) of ``studies``: naive (numbered by seed), the other
    trained methods and the ceiling (``positions``: :func:`relalign.positions.position_table`)."""
    fig, axes = plt.subplots(1, max(len(studies), 1), figsize=(4.6 * max(len(studies), 1), 4.0), squeeze=False)
    for ax, (dataset, study) in zip(axes[0], studies):
        d = positions[(positions["dataset"] == dataset) & (positions["study"] == study) & (positions["split"] == "C")]
        others = d[~d["source"].isin(["naive", "ceiling", "weak"])]
        ax.scatter(others["favourite_share"], others["accuracy"], s=12, color="0.6", label="other methods")
        ceiling = d[d["source"] == "ceiling"]
        ax.scatter(ceiling["favourite_share"], ceiling["accuracy"], s=30, marker="x", color="black", label="ceiling")
        naive = d[d["source"] == "naive"]
        ax.scatter(naive["favourite_share"], naive["accuracy"], s=36, color="tab:red", label="naive")
        for _, r in naive.iterrows():
            ax.annotate(str(r["seed"]), (r["favourite_share"], r["accuracy"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.set(title=f"{dataset}/{study}", xlabel="share of C at the weak labels' favourite position",
               ylabel="accuracy on C")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def score_report(report: pd.DataFrame) -> plt.Figure:
    """Each reliability score: AUROC for finding wrong weak labels, calibration error, and the
    precision and recall of the filter that keeps the more reliable half of the rows."""
    r = report.reset_index(names="score")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    colors = ["tab:blue" if k == "count" else "tab:orange" for k in r["kind"]]
    axes[0].bar(r["score"], r["auroc"], color=colors)
    axes[0].axhline(0.5, color="black", ls="--", lw=0.8)
    axes[0].set(ylim=(0, 1), ylabel="AUROC", title="Wrong vs right weak labels (0.5 = chance)")
    axes[1].bar(r["score"], r["ece"], color=colors)
    axes[1].set(ylabel="ECE", title="Calibration error (lower is better)")
    pr = r.melt(id_vars="score", value_vars=["precision", "recall"], var_name="of the kept rows", value_name="value")
    sns.barplot(data=pr, x="score", y="value", hue="of the kept rows", ax=axes[2])
    axes[2].set(ylim=(0, 1), xlabel="", title="Median filter: precision and recall")
    for ax in axes:
        for label in ax.get_xticklabels():
            label.set(rotation=25, ha="right")
    axes[0].legend(handles=[plt.Rectangle((0, 0), 1, 1, color="tab:blue"), plt.Rectangle((0, 0), 1, 1, color="tab:orange")],
                   labels=["count-based (paper)", "probability-based"], fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def threshold_sweep(sweep: pd.DataFrame, naive: float, ceiling: float | None = None, weak: float | None = None) -> plt.Figure:
    """Strong accuracy on C against the fraction of B's rows kept (most reliable first), with the
    paper's median-entropy filter marked and naive fine-tuning as a reference line."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    pts = sweep[~sweep["paper"]].sort_values("fraction")
    ax.plot(pts["fraction"], pts["accuracy"], marker="o", label="kept the most reliable rows")
    paper = sweep[sweep["paper"]]
    if len(paper):
        ax.scatter(paper["fraction"], paper["accuracy"], marker="*", s=220, color="tab:red", zorder=3,
                   label=f"paper's filter (H <= median): {paper['fraction'].iloc[0]:.0%} kept")
        ax.axvline(paper["fraction"].iloc[0], color="tab:red", ls=":", lw=1)
    ax.axhline(naive, color="black", ls="--", lw=1, label="naive (canonical labels)")
    if ceiling is not None:
        ax.axhline(ceiling, color="tab:green", ls=":", lw=1, label="ceiling (ground truth)")
    if weak is not None:
        ax.axhline(weak, color="tab:gray", ls="-.", lw=1, label="weak supervisor")
    ax.set(xlabel="fraction of B's rows kept", ylabel="strong accuracy on C", xlim=(0, 1.02),
           title="Threshold sweep")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
