import StressSupport

/// A campaign problem the user must fix: a bad plan, an unusable results
/// folder, a batch system that refused the job. One line; the command line
/// prints it as `stress: error: ...` and exits 2.
public typealias CampaignError = ToolError
