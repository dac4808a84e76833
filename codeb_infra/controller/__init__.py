"""What runs on the machine that drives the servers: pyinfra runs, local images, probes, the demo."""
