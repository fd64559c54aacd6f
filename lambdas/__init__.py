"""Lambda handlers (thin: parse, call domain logic, shape the response). Never import the CDK."""
