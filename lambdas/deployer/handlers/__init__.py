"""One thin handler per Lambda function: parse, call the step in `steps`, return the state document."""
