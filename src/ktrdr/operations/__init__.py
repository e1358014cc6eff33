"""Operations: the unit of work the backend accepts, stores and hands to workers."""
