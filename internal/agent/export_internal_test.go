package agent

// IdleMax is idleMax, for the external tests.
const IdleMax = idleMax
