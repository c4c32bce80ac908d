# Hardware abstraction layer: the only way firmware/ reaches hardware.
