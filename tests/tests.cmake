# Black-box and external test suites registered with CTest (filled in as they land).
