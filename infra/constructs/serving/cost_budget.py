"""A monthly cost budget for the environment's account (one account per environment).

When actual cost crosses each configured percentage, and when the forecast crosses 100 %, AWS Budgets
publishes to the environment's ops topic (whose key and topic policies admit this account's budgets) and
e-mails the ops e-mail addresses directly as well, so a cost alert still arrives if the topic is misconfigured.
"""

from __future__ import annotations

from aws_cdk import aws_budgets as budgets
from constructs import Construct

from infra.config import BudgetConfig

MAX_EMAIL_SUBSCRIBERS = 10  # AWS Budgets: at most 10 e-mail subscribers and one SNS topic per notification


class CostBudget(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        config: BudgetConfig,
        emails: tuple[str, ...],
        ops_topic_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=ops_topic_arn)] + [
            budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=email)
            for email in emails[:MAX_EMAIL_SUBSCRIBERS]
        ]
        alerts = [("ACTUAL", float(percent)) for percent in config.alert_at_percent] + [("FORECASTED", 100.0)]
        notifications = [
            budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                ),
                subscribers=subscribers,
            )
            for kind, percent in alerts
        ]
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=config.monthly_limit_usd, unit="USD"),
            ),
            notifications_with_subscribers=notifications,
        )
