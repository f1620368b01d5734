"""The run config: one dataclass per section (`schema`) and the one table of their value rules (`rules`)."""
