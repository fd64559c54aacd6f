"""Local twin of the SageMaker pipeline: the same job scripts, same arguments, run in-process.

    python -m twin run [--schema FILE --data FILE --config FILE --out build/twin]
"""
