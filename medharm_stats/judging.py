"""Judge-versus-clinician statistics: the audit figures, per-model bias, ranking flips,
prediction-powered inference (PPI, PPI++) and audit-sample planning. No Django import.

Every figure is an ``Estimate`` (a value with its 95% interval, or no value and the reason):

* ``judge_audit``: n, accuracy (Wilson), Cohen's kappa (linear weights for ordinal fields,
  Fleiss-Cohen-Everitt SE), Gwet's AC1 (Gwet 2008 variance), the confusion matrix (rows gold,
  columns judge), precision / recall (Wilson) and F1 (percentile bootstrap over items) per class,
  and the parse-failure rate (Wilson; failures are counted here and left out of every other figure).
* ``judge_bias``: per model, judge rate minus clinician rate on the same items, with a percentile
  interval from a paired bootstrap over *queries* (a query's responses of every model move
  together), and Kendall's tau-b between the two model rankings with its interval from the same
  resamples, plus the model pairs whose order flips.
* ``ppi_mean``: the prediction-powered mean of Angelopoulos et al. (Science 2023); ``lam=None``
  is PPI++ (Angelopoulos, Duchi & Zrnic 2023) with the power-tuning parameter estimated and
  clipped to [0, 1], exactly as the authors' ``ppi_py`` does; ``lam=1`` is plain PPI, ``lam=0``
  the classical interval from the labelled sample alone.
* ``audit_sample_size`` / ``stratified_allocation``: how many clinician labels per model reach a
  bias half-width, spread over strata (category x judge verdict) in proportion to their size.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, TypeVar

import numpy as np

from .agreement import DEFAULT_RESAMPLES, DEFAULT_SEED, Weighting, cohen_kappa, gwet_ac1
from .proportions import normal_quantile, wilson_interval
from .ratings import RatingTable
from .result import Estimate

K = TypeVar("K", bound=Hashable)

GOLD, JUDGE = "gold", "judge"
NO_PAIRS = "not computable: no item has both a judge label and a clinician label"


@dataclass(frozen=True)
class ClassFigures:
    value: Hashable
    support: int  # items whose gold label is this class
    predicted: int  # items the judge put in this class
    precision: Estimate
    recall: Estimate
    f1: Estimate


@dataclass(frozen=True)
class JudgeAudit:
    """The audit of one judge on one field against the clinicians' labels."""

    n: int
    categories: tuple[Hashable, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: gold; columns: judge
    accuracy: Estimate
    kappa: Estimate
    kappa_weighting: str
    ac1: Estimate
    classes: tuple[ClassFigures, ...]
    parse_failures: int
    parse_failure_rate: Estimate

    def class_figures(self, value: Hashable) -> ClassFigures | None:
        return next((c for c in self.classes if c.value == value), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "categories": list(self.categories),
            "confusion": [list(row) for row in self.confusion],
            "accuracy": self.accuracy.as_dict(),
            "kappa": self.kappa.as_dict(),
            "kappa_weighting": self.kappa_weighting,
            "ac1": self.ac1.as_dict(),
            "classes": [
                {
                    "value": c.value,
                    "support": c.support,
                    "predicted": c.predicted,
                    "precision": c.precision.as_dict(),
                    "recall": c.recall.as_dict(),
                    "f1": c.f1.as_dict(),
                }
                for c in self.classes
            ],
            "parse_failures": self.parse_failures,
            "parse_failure_rate": self.parse_failure_rate.as_dict(),
        }


def confusion_matrix(
    gold: Sequence[Hashable], judge: Sequence[Hashable], categories: Sequence[Hashable]
) -> np.ndarray:
    """Counts with gold in rows and judge in columns, in the order of ``categories``."""
    position = {value: k for k, value in enumerate(categories)}
    matrix = np.zeros((len(categories), len(categories)), dtype=np.int64)
    for g, j in zip(gold, judge, strict=True):
        matrix[position[g], position[j]] += 1
    return matrix


def _f1_batch(matrices: np.ndarray, k: int) -> np.ndarray:
    tp = matrices[:, k, k]
    predicted = matrices[:, :, k].sum(axis=1)
    support = matrices[:, k, :].sum(axis=1)
    denominator = predicted + support
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)


def _f1(matrix: np.ndarray, k: int, *, resamples: int, seed: int, confidence: float) -> Estimate:
    n = int(matrix.sum())
    value = float(_f1_batch(matrix[None].astype(float), k)[0])
    if not np.isfinite(value):
        return Estimate.not_computable(
            "not computable: the class is neither in gold nor predicted", n_items=n
        )
    if n < 2:
        return Estimate(value=value, n_items=n, ci_reason="no interval: an interval needs at least two items")
    rng = np.random.default_rng(seed)
    q = matrix.shape[0]
    draws = rng.multinomial(n, matrix.ravel() / n, size=resamples).reshape(-1, q, q).astype(float)
    values = _f1_batch(draws, k)
    values = values[np.isfinite(values)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Estimate(
        value=value,
        ci_low=float(low),
        ci_high=float(high),
        n_items=n,
        interval=f"percentile bootstrap over items ({resamples} resamples, seed {seed})",
        details={"resamples_kept": int(values.size)},
    )


def judge_audit(
    pairs: Sequence[tuple[Hashable, Hashable, Hashable]],
    *,
    categories: Sequence[Hashable],
    ordered: bool = False,
    parse_failures: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> JudgeAudit:
    """Audit figures from ``(item, gold value, judge value)`` triples over the declared categories.

    ``parse_failures`` counts the items whose judge output did not parse (with a clinician label):
    they appear only in the parse-failure rate. ``ordered`` fields get a linearly weighted kappa.
    """
    categories = tuple(categories)
    known = set(categories)
    for item, g, j in pairs:
        if g not in known or j not in known:
            raise ValueError(f"item {item!r}: value outside the declared categories")
    n = len(pairs)
    failures = wilson_interval(parse_failures, n + parse_failures, confidence=confidence)
    weighting: Weighting = "linear" if ordered else "none"
    if n == 0:
        empty = Estimate.not_computable(NO_PAIRS)
        return JudgeAudit(
            0, categories, tuple(tuple(0 for _ in categories) for _ in categories), empty, empty,
            weighting, empty, (), parse_failures, failures,
        )  # fmt: skip
    gold = [g for _, g, _ in pairs]
    judge = [j for _, _, j in pairs]
    matrix = confusion_matrix(gold, judge, categories)
    correct = int(np.trace(matrix))
    table = RatingTable.from_records(
        [(item, GOLD, g) for item, g, _ in pairs] + [(item, JUDGE, j) for item, _, j in pairs],
        categories=categories,
    )
    if not ordered:
        table = RatingTable(table.codes, table.categories, False, table.item_ids, table.rater_ids)
    kappa = cohen_kappa(table, weighting=weighting, raters=(GOLD, JUDGE), confidence=confidence)
    ac1 = gwet_ac1(table, confidence=confidence)
    classes = []
    for k, value in enumerate(categories):
        tp = int(matrix[k, k])
        support = int(matrix[k, :].sum())
        predicted = int(matrix[:, k].sum())
        classes.append(
            ClassFigures(
                value=value,
                support=support,
                predicted=predicted,
                precision=wilson_interval(tp, predicted, confidence=confidence),
                recall=wilson_interval(tp, support, confidence=confidence),
                f1=_f1(matrix, k, resamples=resamples, seed=seed + k, confidence=confidence),
            )
        )
    return JudgeAudit(
        n=n,
        categories=categories,
        confusion=tuple(tuple(int(x) for x in row) for row in matrix),
        accuracy=wilson_interval(correct, n, confidence=confidence),
        kappa=kappa,
        kappa_weighting=weighting,
        ac1=ac1,
        classes=tuple(classes),
        parse_failures=parse_failures,
        parse_failure_rate=failures,
    )


# ----------------------------------------------------------------------------- bias and rankings


@dataclass(frozen=True)
class BiasRecord:
    """One item judged by both: which model answered, which query, and the two 0/1 verdicts."""

    model: str
    query: Hashable
    gold: float
    judge: float


@dataclass(frozen=True)
class ModelBias:
    model: str
    n: int
    clinician_rate: Estimate
    judge_rate: Estimate
    bias: Estimate  # judge rate - clinician rate


@dataclass(frozen=True)
class RankingAgreement:
    tau: Estimate  # Kendall's tau-b between the clinician and judge rates of the models
    flips: tuple[tuple[str, str], ...]  # (a, b): clinicians put a above b, the judge b above a
    clinician_order: tuple[str, ...]
    judge_order: tuple[str, ...]


@dataclass(frozen=True)
class BiasReport:
    models: tuple[ModelBias, ...]
    ranking: RankingAgreement

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "model": m.model,
                    "n": m.n,
                    "clinician_rate": m.clinician_rate.as_dict(),
                    "judge_rate": m.judge_rate.as_dict(),
                    "bias": m.bias.as_dict(),
                }
                for m in self.models
            ],
            "kendall_tau": self.ranking.tau.as_dict(),
            "flips": [list(pair) for pair in self.ranking.flips],
            "clinician_order": list(self.ranking.clinician_order),
            "judge_order": list(self.ranking.judge_order),
        }


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties in either ranking handled as in scipy's default); ``None`` if undefined."""
    x_arr, y_arr = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return _tau_batch(x_arr[None], y_arr[None])[0]


def _tau_batch(x: np.ndarray, y: np.ndarray) -> list[float | None]:
    """tau-b for each row of two (B, m) arrays."""
    m = x.shape[1]
    i, j = np.triu_indices(m, k=1)
    dx = np.sign(x[:, i] - x[:, j])
    dy = np.sign(y[:, i] - y[:, j])
    concordance = (dx * dy).sum(axis=1)
    untied_x = (dx != 0).sum(axis=1)
    untied_y = (dy != 0).sum(axis=1)
    denominator = np.sqrt(untied_x.astype(float) * untied_y)
    return [float(c / d) if d > 0 else None for c, d in zip(concordance, denominator, strict=True)]


def ranking_flips(clinician: Mapping[str, float], judge: Mapping[str, float]) -> list[tuple[str, str]]:
    """Pairs (a, b) with a strictly above b for the clinicians and strictly below for the judge,
    or the other way round; each pair once, the clinicians' higher-rate model first."""
    flips = []
    for a, b in combinations(sorted(clinician), 2):
        dc = clinician[a] - clinician[b]
        dj = judge[a] - judge[b]
        if dc * dj < 0:
            flips.append((a, b) if dc > 0 else (b, a))
    return flips


def judge_bias(
    records: Sequence[BiasRecord],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> BiasReport:
    """Per-model bias (judge rate - clinician rate) with a paired bootstrap over queries, and the
    agreement of the two model rankings (Kendall's tau-b, interval from the same resamples)."""
    models = sorted({r.model for r in records})
    queries = sorted({r.query for r in records}, key=lambda q: (type(q).__name__, str(q)))
    q_index = {q: k for k, q in enumerate(queries)}
    m_index = {m: k for k, m in enumerate(models)}
    n_q, n_m = len(queries), len(models)
    # Per (model, query): items, gold sum and judge sum. A bootstrap resample weights queries.
    count = np.zeros((n_m, n_q))
    gold = np.zeros((n_m, n_q))
    judge = np.zeros((n_m, n_q))
    for r in records:
        a, b = m_index[r.model], q_index[r.query]
        count[a, b] += 1
        gold[a, b] += r.gold
        judge[a, b] += r.judge
    rng = np.random.default_rng(seed)
    weights = (
        np.stack([np.bincount(rng.integers(0, n_q, n_q), minlength=n_q) for _ in range(resamples)])
        if n_q
        else np.zeros((resamples, 0))
    ).astype(float)  # (B, Q)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_count = weights @ count.T  # (B, M)
        boot_gold = (weights @ gold.T) / boot_count
        boot_judge = (weights @ judge.T) / boot_count
    tail = (1 - confidence) / 2 * 100
    method = f"paired percentile bootstrap over queries ({resamples} resamples, seed {seed})"
    out = []
    for a, model in enumerate(models):
        n = int(count[a].sum())
        g, j = int(gold[a].sum()), int(judge[a].sum())
        if n == 0:
            continue
        diffs = boot_judge[:, a] - boot_gold[:, a]
        diffs = diffs[np.isfinite(diffs)]
        value = (j - g) / n
        if n < 2 or int((count[a] > 0).sum()) < 2:
            bias = Estimate(value=value, n_items=n, ci_reason="no interval: fewer than two queries")
        else:
            low, high = np.percentile(diffs, [tail, 100 - tail])
            bias = Estimate(
                value=value, ci_low=float(low), ci_high=float(high), n_items=n, interval=method,
                details={"resamples_kept": int(diffs.size), "seed": seed},
            )  # fmt: skip
        out.append(
            ModelBias(
                model=model,
                n=n,
                clinician_rate=wilson_interval(g, n, confidence=confidence),
                judge_rate=wilson_interval(j, n, confidence=confidence),
                bias=bias,
            )
        )
    clinician_rates = {m.model: m.clinician_rate.value or 0.0 for m in out}
    judge_rates = {m.model: m.judge_rate.value or 0.0 for m in out}
    names = [m.model for m in out]
    present = [m_index[name] for name in names]
    clinician_order = tuple(sorted(names, key=lambda k: (-clinician_rates[k], k)))
    judge_order = tuple(sorted(names, key=lambda k: (-judge_rates[k], k)))
    tau_value = (
        kendall_tau_b([clinician_rates[k] for k in names], [judge_rates[k] for k in names])
        if len(names) >= 2
        else None
    )
    if tau_value is None:
        tau = Estimate.not_computable(
            "not computable: fewer than two models, or every model has the same rate", n_items=len(names)
        )
    else:
        keep = np.isfinite(boot_gold[:, present]).all(axis=1) & np.isfinite(boot_judge[:, present]).all(
            axis=1
        )
        taus = [
            t for t in _tau_batch(boot_gold[keep][:, present], boot_judge[keep][:, present]) if t is not None
        ]
        if len(taus) >= 2:
            low, high = np.percentile(taus, [tail, 100 - tail])
            tau = Estimate(
                value=tau_value, ci_low=float(low), ci_high=float(high), n_items=len(names),
                interval=method, details={"resamples_kept": len(taus)},
            )  # fmt: skip
        else:
            tau = Estimate(value=tau_value, n_items=len(names), ci_reason="no interval: too few resamples")
    return BiasReport(
        models=tuple(out),
        ranking=RankingAgreement(
            tau=tau,
            flips=tuple(ranking_flips(clinician_rates, judge_rates)),
            clinician_order=clinician_order,
            judge_order=judge_order,
        ),
    )


# ----------------------------------------------------------------------------- PPI and PPI++


def ppi_lambda(y: np.ndarray, yhat: np.ndarray, yhat_unlabelled: np.ndarray) -> float:
    """The PPI++ power-tuning parameter for a mean, clipped to [0, 1] (ADZ23; as ``ppi_py``)."""
    n, big_n = y.size, yhat_unlabelled.size
    centre = yhat_unlabelled.mean() + (y - yhat).mean()
    grads, grads_hat = y - centre, yhat - centre
    covariance = 2 * ((grads - grads.mean()) * (grads_hat - grads_hat.mean())).mean()
    variance = np.var(np.concatenate([grads_hat, yhat_unlabelled - centre]), ddof=1)
    if variance <= 0:
        return 0.0
    return float(np.clip(covariance / (2 * (1 + n / big_n) * variance), 0.0, 1.0))


def ppi_mean(
    y: Sequence[float],
    yhat: Sequence[float],
    yhat_unlabelled: Sequence[float],
    *,
    lam: float | None = None,
    confidence: float = 0.95,
) -> Estimate:
    """Prediction-powered estimate of a mean from clinician labels ``y`` with the judge's labels
    ``yhat`` on the same items and ``yhat_unlabelled`` on the items clinicians did not label.

    ``lam=None``: PPI++ (lambda estimated); ``lam=1``: PPI; ``lam=0``: classical (labels only).
    """
    y_arr = np.asarray(y, dtype=float)
    yhat_arr = np.asarray(yhat, dtype=float)
    unlabelled = np.asarray(yhat_unlabelled, dtype=float)
    if y_arr.size != yhat_arr.size:
        raise ValueError("y and yhat must have one entry per labelled item")
    n, big_n = y_arr.size, unlabelled.size
    if n < 2 or big_n < 1:
        return Estimate.not_computable(
            "not computable: needs two or more clinician-labelled items and one or more judge-only items",
            n_items=n,
        )
    tuned = lam is None
    if tuned:
        lam = ppi_lambda(y_arr, yhat_arr, unlabelled)
    assert lam is not None
    value = float(lam * unlabelled.mean() + (y_arr - lam * yhat_arr).mean())
    se = math.sqrt(float(np.var(lam * unlabelled)) / big_n + float(np.var(y_arr - lam * yhat_arr)) / n)
    z = normal_quantile(confidence)
    name = "PPI++" if tuned else ("classical (labels only)" if lam == 0 else "PPI")
    return Estimate(
        value=value,
        ci_low=value - z * se,
        ci_high=value + z * se,
        n_items=n + big_n,
        interval=f"{name}, normal (Angelopoulos et al. 2023)",
        details={"lambda": float(lam), "se": se, "labelled": n, "unlabelled": big_n},
    )


def normal_mean(values: Sequence[float], *, confidence: float = 0.95) -> Estimate:
    """The mean with a CLT interval (population variance, as ``ppi_py``'s classical interval)."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return Estimate.not_computable("not computable: fewer than two items", n_items=int(arr.size))
    se = float(np.std(arr)) / math.sqrt(arr.size)
    z = normal_quantile(confidence)
    mean = float(arr.mean())
    return Estimate(
        value=mean, ci_low=mean - z * se, ci_high=mean + z * se, n_items=int(arr.size),
        interval="normal (CLT)", details={"se": se},
    )  # fmt: skip


@dataclass(frozen=True)
class AssistedRate:
    """One model's rate three ways, and how much narrower the judge-assisted interval is."""

    model: str
    clinician_only: Estimate  # labelled sample alone
    judge_only: Estimate  # judge labels on every item (biased if the judge is)
    ppi: Estimate
    ppi_plus: Estimate

    @property
    def width_ratio(self) -> float | None:
        """PPI++ interval width over the clinician-only width (below 1: narrower)."""
        a, b = self.ppi_plus, self.clinician_only
        if a.ci_low is None or b.ci_low is None or b.ci_high is None or a.ci_high is None:
            return None
        width = b.ci_high - b.ci_low
        return (a.ci_high - a.ci_low) / width if width > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "clinician_only": self.clinician_only.as_dict(),
            "judge_only": self.judge_only.as_dict(),
            "ppi": self.ppi.as_dict(),
            "ppi_plus": self.ppi_plus.as_dict(),
            "width_ratio": self.width_ratio,
        }


def assisted_rate(
    model: str,
    y: Sequence[float],
    yhat: Sequence[float],
    yhat_unlabelled: Sequence[float],
    *,
    confidence: float = 0.95,
) -> AssistedRate:
    everything = list(yhat) + list(yhat_unlabelled)
    successes = round(sum(everything))
    return AssistedRate(
        model=model,
        clinician_only=wilson_interval(round(sum(y)), len(y), confidence=confidence)
        if len(y)
        else Estimate.not_computable("not computable: no clinician labels"),
        judge_only=wilson_interval(successes, len(everything), confidence=confidence)
        if everything
        else Estimate.not_computable("not computable: no judge labels"),
        ppi=ppi_mean(y, yhat, yhat_unlabelled, lam=1.0, confidence=confidence),
        ppi_plus=ppi_mean(y, yhat, yhat_unlabelled, lam=None, confidence=confidence),
    )


# ----------------------------------------------------------------------------- audit-sample planning


def audit_sample_size(
    *, half_width: float, disagreement: float = 0.2, confidence: float = 0.95, population: int | None = None
) -> int:
    """Items per model so that the bias interval reaches +/- ``half_width``.

    The bias is the mean of d = judge - clinician (each 0/1), whose variance is at most
    E[d^2] = P(judge != clinician) = ``disagreement`` (a planning value: a pilot audit's, or 0.2).
    n = z^2 * disagreement / half_width^2, with the finite-population correction when the model
    has only ``population`` responses.
    """
    if not 0 < half_width < 1:
        raise ValueError("half_width must lie strictly between 0 and 1")
    if not 0 < disagreement <= 1:
        raise ValueError("disagreement must lie in (0, 1]")
    z = normal_quantile(confidence)
    n0 = z * z * disagreement / (half_width * half_width)
    if population is not None:
        if population < 1:
            return 0
        n0 = n0 / (1 + (n0 - 1) / population)
        return min(population, math.ceil(n0))
    return math.ceil(n0)


def stratified_allocation(sizes: Mapping[K, int], n: int) -> dict[K, int]:
    """``n`` items spread over strata in proportion to their sizes (largest remainder), never more
    than a stratum holds; a non-empty stratum gets at least one item when ``n`` allows."""
    total = sum(sizes.values())
    n = min(n, total)
    if n <= 0:
        return dict.fromkeys(sizes, 0)
    keys = sorted(sizes, key=lambda k: str(k))
    exact = {k: n * sizes[k] / total for k in keys}
    alloc = {k: min(sizes[k], math.floor(exact[k])) for k in keys}
    for k in keys:
        if sizes[k] > 0 and alloc[k] == 0 and sum(alloc.values()) < n:
            alloc[k] = 1
    order = sorted(keys, key=lambda k: (-(exact[k] - math.floor(exact[k])), str(k)))
    while sum(alloc.values()) < n:
        grew = False
        for k in order:
            if sum(alloc.values()) >= n:
                break
            if alloc[k] < sizes[k]:
                alloc[k] += 1
                grew = True
        if not grew:
            break
    while sum(alloc.values()) > n:  # the minimum-one rule can overshoot: take back from the largest
        k = max(keys, key=lambda k: (alloc[k], str(k)))
        alloc[k] -= 1
    return alloc


@dataclass(frozen=True)
class SamplePlan:
    per_model: dict[str, int]
    per_stratum: dict[tuple[str, ...], int] = field(default_factory=dict)
    labels_per_item: int = 2
    minutes_per_label: float = 1.5

    @property
    def items(self) -> int:
        return sum(self.per_stratum.values())

    @property
    def clinician_hours(self) -> float:
        return self.items * self.labels_per_item * self.minutes_per_label / 60


def audit_plan(
    strata: Mapping[tuple[str, ...], int],
    *,
    half_width: float,
    disagreement: float = 0.2,
    labels_per_item: int = 2,
    minutes_per_label: float = 1.5,
    confidence: float = 0.95,
) -> SamplePlan:
    """Strata keyed (model, category, judge verdict) -> responses; a sample per model sized for the
    bias half-width, spread over that model's strata."""
    by_model: dict[str, dict[tuple[str, ...], int]] = {}
    for key, size in strata.items():
        by_model.setdefault(key[0], {})[key] = size
    per_model: dict[str, int] = {}
    per_stratum: dict[tuple[str, ...], int] = {}
    for model, sizes in sorted(by_model.items()):
        n = audit_sample_size(
            half_width=half_width, disagreement=disagreement, confidence=confidence,
            population=sum(sizes.values()),
        )  # fmt: skip
        per_model[model] = n
        per_stratum.update(stratified_allocation(sizes, n))
    return SamplePlan(per_model, per_stratum, labels_per_item, minutes_per_label)
