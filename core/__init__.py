"""What every tab stands on: settings, device, model cache, outputs, shared UI parts."""
