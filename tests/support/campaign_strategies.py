"""The small SMA-crossover search space the campaign tests sweep: 4 fast periods x 3 slow,
of which the constraint leaves 10 (12 with 12 and 16 fail `fast < slow`)."""

SWEEP_STRATEGY = """
name: sma_sweep
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - {id: sma_fast, type: sma, params: {period: 10}}
  - {id: sma_slow, type: sma, params: {period: 30}}
decisions:
  signals:
    - crossover: {fast: sma_fast, slow: sma_slow}
costs: {commission: 0.001, slippage: 0.0}
search:
  parameters:
    indicators.sma_fast.params.period: {range: [4, 16, 4]}
    indicators.sma_slow.params.period: {values: [12, 30, 50]}
  constraints: ["sma_fast.period < sma_slow.period"]
"""
