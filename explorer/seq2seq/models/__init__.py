"""Model families: the shared contract (base), score functions, the RNN and Transformer families,
and building any of them from a config dict."""
