import sys

from training_jobs.twin.cli import main

sys.exit(main())
