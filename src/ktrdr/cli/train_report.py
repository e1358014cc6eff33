"""What `ktrdr train show` and `ktrdr train compare` draw: a training run's learning curve
as terminal sparklines, its HTML report (Plotly, built with the backtest report's page
machinery) and several runs side by side."""

from __future__ import annotations

import html
from typing import Any

from ktrdr.cli.report import sparkline
from ktrdr.reports import fmt


def curve_lines(curve: dict[str, Any]) -> list[str]:
    """Sparklines of the train/validation loss and validation accuracy, first → last."""
    points = curve["points"]
    if not points:
        return ["no epochs reported yet"]
    lines = []
    for key, label, pattern in (
        ("train_loss", "train loss", "{:.4f}"),
        ("val_loss", "val loss  ", "{:.4f}"),
        ("val_accuracy", "val acc   ", "{:.1%}"),
    ):
        series = [p[key] for p in points]
        line = sparkline([v for v in series if v is not None])  # the backtest's sparkline
        lines.append(f"{label} {line}  {fmt(series[0], pattern)} → {fmt(series[-1], pattern)}")
    total = curve.get("epochs_total")
    lines.append(
        f"epochs 1..{points[-1]['epoch']}"
        + (f" of {total}" if total else "")
        + f"; best (lowest validation loss) epoch {curve['best_epoch']}"
    )
    return lines


def latest_metric(curve: dict[str, Any]) -> str:
    """The newest epoch's validation figures, for the progress bar."""
    latest = curve.get("latest")
    if not latest:
        return ""
    return (
        f"epoch {latest['epoch']}/{curve['epochs_total']} val loss "
        f"{fmt(latest['val_loss'], '{:.4f}')} acc {fmt(latest['val_accuracy'], '{:.1%}')}"
    )


# (label, how to read it from an operation record, format)
_COMPARE_ROWS: tuple[tuple[str, Any, str], ...] = (
    ("status", lambda op: op["status"], "{}"),
    ("strategy", lambda op: _result(op).get("strategy") or op["params"].get("strategy"), "{}"),
    ("symbol", lambda op: f"{op['params'].get('symbol')} {op['params'].get('timeframe')}", "{}"),
    ("model", lambda op: _model(op), "{}"),
    ("network", lambda op: _training(op).get("model"), "{}"),
    ("hidden layers", lambda op: _training(op).get("hidden_layers"), "{}"),
    ("labels", lambda op: _training(op).get("labels"), "{}"),
    ("validation", lambda op: (_training(op).get("validation") or {}).get("method"), "{}"),
    ("learning rate", lambda op: _training(op).get("learning_rate"), "{:g}"),
    ("batch size", lambda op: _training(op).get("batch_size"), "{}"),
    ("seed", lambda op: _training(op).get("seed"), "{}"),
    ("train rows", lambda op: _ranges(op, "train"), "{}"),
    ("validation rows", lambda op: _ranges(op, "validation"), "{}"),
    ("test rows", lambda op: _ranges(op, "test"), "{}"),
    ("epochs run", lambda op: _metrics(op).get("epochs_run"), "{}"),
    ("best epoch", lambda op: _metrics(op).get("best_epoch"), "{}"),
    ("test accuracy", lambda op: _metrics(op).get("test_accuracy"), "{:.1%}"),
    ("baseline accuracy", lambda op: _metrics(op).get("baseline_accuracy"), "{:.1%}"),
    ("best val loss", lambda op: _best_val_loss(op), "{:.4f}"),
    ("CV mean accuracy", lambda op: _result(op).get("cross_validation", {}).get("mean_accuracy"),
     "{:.1%}"),
)  # fmt: skip


def compare_rows(ops: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(label, one cell per run) for every row of the comparison."""
    return [
        (label, [fmt(read(op), pattern) for op in ops]) for label, read, pattern in _COMPARE_ROWS
    ]


def _result(op: dict[str, Any]) -> dict[str, Any]:
    return op.get("result") or {}


def _metrics(op: dict[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = _result(op).get("metrics") or {}
    return metrics


def _training(op: dict[str, Any]) -> dict[str, Any]:
    """The training section as trained (overrides applied), from the stored model."""
    training: dict[str, Any] = (_result(op).get("effective_strategy") or {}).get("training") or {}
    return training


def _model(op: dict[str, Any]) -> str | None:
    model = _result(op).get("model")
    return f"{model['name']} v{model['version']}" if model else None


def _ranges(op: dict[str, Any], split: str) -> str | None:
    part = ((_result(op).get("model") or {}).get("date_ranges") or {}).get(split)
    if not part:
        return None
    return f"{part['start'][:10]}..{part['end'][:10]} ({part['rows']})"


def _best_val_loss(op: dict[str, Any]) -> float | None:
    metrics = _metrics(op)
    if "best_val_loss" in metrics:
        best: float | None = metrics["best_val_loss"]
        return best
    # Runs recorded before the history became an artifact kept every epoch inline.
    losses = [h["val_loss"] for h in _result(op).get("history") or [] if h["val_loss"] is not None]
    return min(losses) if losses else None


def training_report(op: dict[str, Any], curve: dict[str, Any]) -> str:
    """One self-contained HTML page: loss and accuracy per epoch, the confusion matrix,
    per-class figures and (with a purged k-fold) the folds."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from ktrdr.cli.html_report import chart, page

    result = _result(op)
    points = curve["points"]
    epochs = [p["epoch"] for p in points]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Loss", "Validation accuracy"), horizontal_spacing=0.08
    )
    fig.add_trace(
        go.Scatter(x=epochs, y=[p["train_loss"] for p in points], name="train loss"), 1, 1
    )
    fig.add_trace(
        go.Scatter(x=epochs, y=[p["val_loss"] for p in points], name="validation loss"), 1, 1
    )
    fig.add_trace(
        go.Scatter(x=epochs, y=[p["val_accuracy"] for p in points], name="validation accuracy"),
        1, 2,
    )  # fmt: skip
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=420, hovermode="x unified")
    body = [
        f"<h1>Training run {html.escape(op['id'])}</h1>",
        f"<p>{html.escape(str(result.get('strategy') or op['params'].get('strategy')))} on "
        f"{html.escape(str(op['params'].get('symbol')))} "
        f"{html.escape(str(op['params'].get('timeframe')))}, {html.escape(op['status'])}, "
        f"{len(points)} epochs; best epoch {curve['best_epoch']}</p>",
        chart(fig, "curves"),
    ]
    evaluation = result.get("evaluation")
    if evaluation:
        matrix = evaluation["confusion_matrix"]
        classes = matrix["classes"]
        heat = go.Figure(
            go.Heatmap(
                z=matrix["rows_true_columns_predicted"], x=classes, y=classes,
                text=matrix["rows_true_columns_predicted"], texttemplate="%{text}",
                colorscale="Blues",
            )
        )  # fmt: skip
        heat.update_layout(
            title="Confusion matrix (test split)", height=420, width=520,
            xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
        )  # fmt: skip
        rows = "".join(
            f"<tr><th>{html.escape(name)}</th><td>{f['precision']:.1%}</td>"
            f"<td>{f['recall']:.1%}</td><td>{f['support']}</td></tr>"
            for name, f in evaluation["per_class"].items()
        )
        body += [
            f"<p>test accuracy {evaluation['accuracy']:.1%}, always the commonest class "
            f"{evaluation['baseline_accuracy']:.1%}</p>",
            chart(heat, "confusion"),
            "<table><tr><th>class</th><th>precision</th><th>recall</th><th>support</th></tr>"
            f"{rows}</table>",
        ]
    folds = result.get("cross_validation")
    if folds:
        rows = "".join(
            f"<tr><th>{f['fold']}</th><td>{html.escape(f['test_start'][:10])}..."
            f"{html.escape(f['test_end'][:10])}</td><td>{f['train_rows']}</td>"
            f"<td>{f['purged_rows']}</td><td>{f['embargoed_rows']}</td>"
            f"<td>{fmt(f['loss'], '{:.4f}')}</td><td>{fmt(f['accuracy'], '{:.1%}')}</td>"
            f"<td>{f['baseline_accuracy']:.1%}</td></tr>"
            for f in folds["folds"]
        )
        body.append(
            f"<h2>Purged k-fold ({len(folds['folds'])} folds, embargo {folds['embargo']})</h2>"
            "<table><tr><th>fold</th><th>test rows</th><th>train</th><th>purged</th>"
            "<th>embargoed</th><th>loss</th><th>accuracy</th><th>baseline</th></tr>"
            f"{rows}</table><p>mean accuracy {folds['mean_accuracy']:.1%} "
            f"(± {folds['std_accuracy']:.1%})</p>"
        )
    return page(f"KTRDR training {op['id']}", "".join(body))
