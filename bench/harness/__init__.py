"""What every benchmark in bench/ shares: its runtime, its services, load and the JSON report."""
