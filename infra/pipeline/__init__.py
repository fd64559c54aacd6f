"""The SageMaker pipeline as typed step objects, rendered to the pipeline definition JSON offline.

Synth-time code: plain Python and the standard library, no CDK and no SageMaker SDK (importing the
SDK costs seconds and it probes AWS; tests render the same pipeline with the SDK and compare).

    expressions.py  pipeline expressions: parameters, step properties, JsonGet, Join, Fn::Sub variables
    steps.py        Processing, Training, Lambda, Condition, Fail, RegisterModel, Model and Transform steps
    render.py       the definition document, its Fn::Sub body and the pretty copy
    churn.py        the churn pipeline: which steps, in which order, with which arguments
    scoring.py      the batch-scoring pipeline: champion, requests, model, Batch Transform, scores table
    code_bundle.py  the job code as one deterministic archive
"""
