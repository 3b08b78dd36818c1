// implementation pending in this session's work
