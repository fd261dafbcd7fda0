"""Qt widgets of the simulator window; each shows what the headless session emits."""
