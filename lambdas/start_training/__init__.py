"""start_training: the one way a training pipeline execution starts (FeaturesReady events, retraining alarms).

handler.py is the Lambda entry point; the logic lives beside it and runs without Lambda:
events (parse), decision (rules), store/dynamodb_store/memory_store (state), pipeline (SageMaker),
audit (records), service (composition with Powertools idempotency). Modules import each other
relatively, so the package works as `lambdas.start_training` here and as `start_training` in Lambda.
"""
