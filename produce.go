package kpax

// producerConfig holds the producer's options; its defaults are part of
// defaultConfig and its checks part of validate.
type producerConfig struct{}

func defaultProducerConfig() producerConfig { return producerConfig{} }

func (c *producerConfig) validate() []error { return nil }
