"""Monthly cost of one environment, idle and under a stated load.

Each line is a monthly quantity times a unit price from prices.yaml. Quantities come from the stage's templates
(inventory.py) and, for what the deployer creates at run time (the endpoint, a Model Monitor schedule), from the
environment's config. Free tiers are not deducted, except the account's three free dashboards (each environment
has an account of its own). A line whose price has no source is reported as unpriced and left out of the totals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from infra.cost.inventory import Inventory, JobStep
from infra.cost.prices import Price, PriceTable
from infra.cost.schedules import HOURS_PER_MONTH, runs_per_month

if TYPE_CHECKING:
    from infra.config import EnvironmentConfig

DAYS_PER_MONTH = HOURS_PER_MONTH / 24
WEEKS_PER_MONTH = 365.25 / 7 / 12
FREE_DASHBOARDS = 3
# The churn pipeline ships the Neuron (PyTorch) package on the run path model.py prices (every condition's
# if-branch), so batch scoring transforms with that package type.
SCORED_MODEL_TYPE = "pytorch"


@dataclass(frozen=True)
class Assumptions:
    """The stated load; every field is a `python -m infra.cost` flag (the name with dashes)."""

    predictions_per_day: int = 100_000
    cdr_gb_per_day: float = 1.0
    retrains_per_week: float = 1.0
    job_minutes: float = 10.0
    drift_job_minutes: float = 5.0
    glue_job_minutes: float = 10.0
    async_active_hours_per_day: float = 8.0
    spot_discount_percent: float = 0.0
    athena_gb_scanned_per_day: float = 1.0
    log_gb_per_day: float = 0.1
    dynamodb_writes_per_retrain: int = 20

    def describe(self) -> list[str]:
        """One line per assumption, as printed with every table."""
        return [
            f"{self.predictions_per_day:,} predictions a day, spread evenly over the day (real-time endpoints) or "
            f"over {self.async_active_hours_per_day:g} active hours (asynchronous endpoints, scaled to their minimum "
            "outside them)",
            f"{self.retrains_per_week:g} retrain a week ({self.retrains_per_week * WEEKS_PER_MONTH:.2f} a month), each "
            "after a subscriber snapshot: the snapshot's Glue jobs, one churn pipeline run in which every condition "
            "holds (the gate passes, the Neuron package ships), one deployment and the batch-scoring run the deployer "
            "starts after it",
            f"each SageMaker job of a pipeline run takes {self.job_minutes:g} min; each drift or Model Monitor job "
            f"{self.drift_job_minutes:g} min; each Glue job {self.glue_job_minutes:g} min (all billed per second)",
            f"managed spot training at {self.spot_discount_percent:g}% below on-demand (spot prices vary; 0 = the "
            "on-demand upper bound)",
            f"{self.cdr_gb_per_day:g} GB of CDRs a day through Firehose into the raw zone, kept in S3 Standard until "
            "the raw zone's lifecycle moves them to Glacier or expires them",
            "batch scoring and drift runs as their schedules in the templates fire; "
            f"{self.athena_gb_scanned_per_day:g} GB a day scanned by Athena; {self.log_gb_per_day:g} GB of logs a day; "
            f"{self.dynamodb_writes_per_retrain} DynamoDB writes per retrain (trigger state and deployer ledger)",
        ]


def assumption_fields() -> list[str]:
    return [f.name for f in fields(Assumptions)]


@dataclass(frozen=True)
class Line:
    """One cost item: a monthly quantity idle and under load, times one unit price."""

    item: str
    detail: str
    unit: str  # the unit of the quantities, e.g. "AZ-hours"
    price: Price
    idle_quantity: float
    load_quantity: float

    def _usd(self, quantity: float) -> float | None:
        if quantity == 0:
            return 0.0
        return None if self.price.value is None else quantity * self.price.value

    @property
    def idle_usd(self) -> float | None:
        return self._usd(self.idle_quantity)

    @property
    def load_usd(self) -> float | None:
        return self._usd(self.load_quantity)


@dataclass(frozen=True)
class Estimate:
    environment: str
    stage: str
    region: str
    account: str
    lines: tuple[Line, ...]

    def total(self, scenario: str) -> float:
        return sum(u for u in (getattr(line, f"{scenario}_usd") for line in self.lines) if u is not None)

    def unpriced(self, scenario: str) -> list[Line]:
        return [line for line in self.lines if getattr(line, f"{scenario}_usd") is None]

    def find(self, item: str) -> Line | None:
        return next((line for line in self.lines if line.item == item), None)

    def line(self, item: str) -> Line:
        found = self.find(item)
        if found is None:
            raise KeyError(f"{self.environment}: no cost line '{item}'")
        return found


def estimate(config: EnvironmentConfig, inventory: Inventory, prices: PriceTable, load: Assumptions) -> Estimate:
    """The environment's monthly estimate (see the module docstring for what is counted and how)."""
    builder = _Builder(config, inventory, prices, load)
    return Estimate(config.name, config.stage_name, config.region, config.account, tuple(builder.lines()))


class _Builder:
    def __init__(self, config: EnvironmentConfig, inv: Inventory, prices: PriceTable, load: Assumptions) -> None:
        self.config, self.inv, self.prices, self.load = config, inv, prices, load
        self.region = config.region
        self.retrains = load.retrains_per_week * WEEKS_PER_MONTH

    def price(self, item: str) -> Price:
        return self.prices.get(item, self.region)

    def lines(self) -> list[Line]:
        return [
            *self._always_on(),
            *self._endpoint(),
            *self._pipeline_jobs(),
            *self._data(),
            *self._small_per_use(),
        ]

    # ------------------------------------------------------------------------------------------ always on
    def _always_on(self) -> list[Line]:
        inv = self.inv
        az_hours = sum(azs for _, azs in inv.interface_endpoints) * HOURS_PER_MONTH
        azs = sorted({n for _, n in inv.interface_endpoints}) or [len(self.config.availability_zones)]
        paid_dashboards = max(0, inv.dashboards - FREE_DASHBOARDS)
        return [
            Line(
                "Interface endpoints",
                f"{len(inv.interface_endpoints)} endpoints x {'/'.join(map(str, azs))} AZs x {HOURS_PER_MONTH:g} h",
                "AZ-hours",
                self.price("interface_endpoint_az_hour"),
                az_hours,
                az_hours,
            ),
            Line(
                "KMS keys",
                f"{inv.kms_keys} customer managed keys",
                "key-months",
                self.price("kms_key_month"),
                inv.kms_keys,
                inv.kms_keys,
            ),
            Line(
                "Secrets Manager",
                f"{inv.secrets} secret(s)",
                "secret-months",
                self.price("secret_month"),
                inv.secrets,
                inv.secrets,
            ),
            Line(
                "CloudWatch alarms",
                f"{inv.alarms} alarms reading {inv.alarm_metrics} metrics",
                "alarm metric-months",
                self.price("cloudwatch_alarm_metric_month"),
                inv.alarm_metrics,
                inv.alarm_metrics,
            ),
            Line(
                "CloudWatch dashboards",
                f"{inv.dashboards} dashboards, {FREE_DASHBOARDS} free per account",
                "dashboard-months",
                self.price("cloudwatch_dashboard_month"),
                paid_dashboards,
                paid_dashboards,
            ),
        ]

    # ------------------------------------------------------------------------------------------ endpoint
    def _endpoint(self) -> list[Line]:
        endpoint = self.config.ml.endpoint
        rpm = self.load.predictions_per_day / (24 * 60)
        if endpoint.mode == "realtime":
            needed = math.ceil(rpm / endpoint.target_invocations_per_instance) if rpm else 0
            busy = min(endpoint.max_instances, max(endpoint.min_instances, needed))
            idle_hours = endpoint.min_instances * HOURS_PER_MONTH
            load_hours = busy * HOURS_PER_MONTH
            detail = (
                f"real-time, {endpoint.instance_type}, {endpoint.min_instances}-{endpoint.max_instances} "
                f"instances ({busy} under load, {endpoint.target_invocations_per_instance:,} invocations/min each)"
            )
        else:
            active = self.load.async_active_hours_per_day if self.load.predictions_per_day else 0.0
            busy = max(1, endpoint.min_instances)
            idle_hours = endpoint.min_instances * HOURS_PER_MONTH
            load_hours = (busy * active + endpoint.min_instances * (24 - active)) * DAYS_PER_MONTH
            detail = (
                f"asynchronous, {endpoint.instance_type}, {endpoint.min_instances}-{endpoint.max_instances} "
                f"instances (scales to its minimum when idle)"
            )
        return [
            Line(
                "Endpoint (the deployer's, from ml.endpoint)",
                detail,
                "instance-hours",
                self.prices.instance(endpoint.instance_type, self.region),
                idle_hours,
                load_hours,
            )
        ]

    # ------------------------------------------------------------------------------------------ jobs
    def _pipeline_jobs(self) -> list[Line]:
        # (group, instance type) -> [idle, load] instance-hours a month. Idle: the schedules still fire (batch
        # scoring re-scores the feature table; a drift run without captured data stops at its Lambda step).
        hours: dict[tuple[str, str], list[float]] = {}
        churn, scoring, drift = (f"telecom-ml-{self.config.name}-churn{s}" for s in ("", "-batch-scoring", "-drift"))
        job_h, drift_h = self.load.job_minutes / 60, self.load.drift_job_minutes / 60
        for step in self.inv.pipelines.get(churn, []):
            self._add(hours, "Retraining jobs", step, 0.0, self.retrains * job_h)
        scheduled = sum(runs_per_month(s.expression) for s in self.inv.schedules_of(scoring))
        for step in self.inv.pipelines.get(scoring, []):
            self._add(hours, "Batch scoring jobs", step, scheduled * job_h, (scheduled + self.retrains) * job_h)
        drift_runs = sum(runs_per_month(s.expression) for s in self.inv.schedules_of(drift))
        for step in self.inv.pipelines.get(drift, []):
            self._add(hours, "Drift jobs", step, 0.0, drift_runs * drift_h)
        if self.config.monitoring.engine == "model_monitor":
            monitor_runs = runs_per_month(self.config.monitoring.schedule)
            for definition in self.inv.monitoring_job_definitions:
                key = ("Model Monitor jobs", definition.instance_type)
                hours.setdefault(key, [0.0, 0.0])[1] += monitor_runs * drift_h * definition.instance_count
        lines = [
            Line(
                f"{group} ({instance_type})",
                self._job_detail(group, scheduled, drift_runs),
                "instance-hours",
                self.prices.instance(instance_type, self.region),
                idle,
                load,
            )
            for (group, instance_type), (idle, load) in hours.items()
        ]
        lines += self._glue()
        return lines

    def _add(
        self, hours: dict[tuple[str, str], list[float]], group: str, step: JobStep, idle_hours: float, load_hours: float
    ) -> None:
        instance_type = step.instance_type or self.config.ml.batch_scoring.instance_type(
            SCORED_MODEL_TYPE, self.config.ml
        )
        factor = step.instance_count * (1 - self.load.spot_discount_percent / 100 if step.managed_spot else 1.0)
        totals = hours.setdefault((group, instance_type), [0.0, 0.0])
        totals[0] += idle_hours * factor
        totals[1] += load_hours * factor

    def _job_detail(self, group: str, scheduled: float, drift_runs: float) -> str:
        if group == "Retraining jobs":
            return f"{self.retrains:.2f} churn pipeline runs a month under load"
        if group == "Batch scoring jobs":
            return (
                f"{scheduled:.2f} scheduled runs a month (idle), plus one after each deployment under load; "
                f"the transform on the {SCORED_MODEL_TYPE} package's instance type"
            )
        if group == "Drift jobs":
            return f"{drift_runs:.1f} scheduled runs a month; the job runs only when the window holds captured data"
        schedule = self.config.monitoring.schedule
        return f"{runs_per_month(schedule):.1f} runs a month ({schedule}) once the deployer has created the schedule"

    def _glue(self) -> list[Line]:
        jobs = [self.inv.glue_jobs[j] for j in self.inv.snapshot_glue_jobs]
        minutes = max(1.0, self.load.glue_job_minutes)  # Glue bills a minimum of one minute per run
        dpu_hours = sum(job.dpus for job in jobs) * minutes / 60 * self.retrains
        detail = (
            f"{len(jobs)} jobs per snapshot ({', '.join(f'{j.workers} x {j.worker_type}' for j in jobs)}), "
            f"{self.retrains:.2f} snapshots a month"
        )
        return [Line("Glue ETL", detail, "DPU-hours", self.price("glue_dpu_hour"), 0.0, dpu_hours)]

    # ------------------------------------------------------------------------------------------ data
    def _data(self) -> list[Line]:
        lake = self.config.data_lake
        gb_month = self.load.cdr_gb_per_day * DAYS_PER_MONTH
        raw = lake.raw
        kept = min(d for d in (raw.glacier_after_days, raw.expire_after_days, 365) if d is not None)
        stored = self.load.cdr_gb_per_day * kept
        objects_per_day = (
            max(
                self.load.cdr_gb_per_day * 1024 / lake.firehose_buffer_mib,
                86_400 / max(lake.firehose_buffer_seconds, 60),
            )
            if self.load.cdr_gb_per_day
            else 0.0
        )
        log_gb = self.load.log_gb_per_day * DAYS_PER_MONTH
        athena_tb = self.load.athena_gb_scanned_per_day * DAYS_PER_MONTH / 1024
        custom = len(self.inv.custom_metrics)
        return [
            Line(
                "Firehose ingestion",
                f"{self.inv.firehose_streams} Direct PUT stream(s)",
                "GB",
                self.price("firehose_gb"),
                0.0,
                gb_month * self.inv.firehose_streams,
            ),
            Line(
                "S3 raw CDRs",
                f"{kept} days of CDRs in S3 Standard (steady state)",
                "GB-months",
                self.price("s3_standard_gb_month"),
                0.0,
                stored,
            ),
            Line(
                "S3 PUT requests",
                f"Firehose objects ({lake.firehose_buffer_mib} MiB / {lake.firehose_buffer_seconds} s buffers)",
                "thousand requests",
                self.price("s3_1k_put_requests"),
                0.0,
                objects_per_day * DAYS_PER_MONTH / 1000,
            ),
            Line(
                "CloudWatch Logs ingestion",
                f"{self.inv.log_groups} log groups",
                "GB",
                self.price("cloudwatch_logs_ingested_gb"),
                0.0,
                log_gb,
            ),
            Line(
                "CloudWatch custom metrics",
                f"{custom} drift metrics the retraining alarms read",
                "metric-months",
                self.price("cloudwatch_custom_metric_month"),
                0.0,
                float(custom),
            ),
            Line(
                "Athena",
                "queries on the lake and the scores table",
                "TB scanned",
                self.price("athena_tb_scanned"),
                0.0,
                athena_tb,
            ),
        ]

    # ------------------------------------------------------------------------------------------ rounds to 0
    def _small_per_use(self) -> list[Line]:
        inv = self.inv
        schedule_runs = sum(runs_per_month(s.expression) for s in inv.schedules)
        deployer_states = sum(n for name, n in inv.state_machine_states.items() if name.startswith("Deployer"))
        transitions = self.retrains * (inv.snapshot_transitions + deployer_states)
        # Lambda: the drift WindowGuard once per drift run, and a handful per retrain (trigger, champion lookup,
        # deployer steps: about one per deployer state).
        lambda_requests = schedule_runs + self.retrains * (2 + deployer_states)
        on_demand = sum(1 for _, mode in inv.dynamodb_tables if mode == "PAY_PER_REQUEST")
        writes = self.retrains * self.load.dynamodb_writes_per_retrain if on_demand else 0.0
        return [
            Line(
                "Step Functions",
                f"snapshot orchestration ({inv.snapshot_transitions} states) and deployer "
                f"({deployer_states} states at most) per retrain",
                "thousand transitions",
                self.price("step_functions_1k_transitions"),
                0.0,
                transitions / 1000,
            ),
            Line(
                "Lambda requests",
                f"{inv.lambda_functions} functions; rounds to 0 at this load (duration not counted)",
                "million requests",
                self.price("lambda_million_requests"),
                schedule_runs / 1e6,
                lambda_requests / 1e6,
            ),
            Line(
                "EventBridge Scheduler",
                f"{len(inv.schedules)} schedule(s), {schedule_runs:.0f} invocations a month",
                "million invocations",
                self.price("eventbridge_million_invocations"),
                schedule_runs / 1e6,
                schedule_runs / 1e6,
            ),
            Line(
                "DynamoDB on demand",
                f"{on_demand} on-demand table(s)",
                "million writes",
                self.price("dynamodb_million_writes"),
                0.0,
                writes / 1e6,
            ),
        ]
