"""Making the embedded model: synthetic pages, the architecture, SFT, health checks, release."""
