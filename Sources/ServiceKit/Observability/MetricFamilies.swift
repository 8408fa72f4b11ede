/// Every metric family this system exports besides Hummingbird's HTTP ones (renamed in ``MetricsSetup``):
/// docs/OPERATIONS.md lists them, `deploy/prometheus` alerts on them and `deploy/grafana` charts them.
public enum MetricFamilies {
    // gRPC, both sides (RPCMetricsServerInterceptor / RPCMetricsClientInterceptor).
    public static let grpcServerHandled = MetricFamily(
        "grpc_server_handled_total", .counter, labels: ["grpc_service", "grpc_method", "grpc_code"],
        help: "Calls served, by final status.")
    public static let grpcServerSeconds = MetricFamily(
        "grpc_server_handling_seconds", .histogram, labels: ["grpc_service", "grpc_method"],
        help: "Time from a call's arrival to its last response message, as served.")
    public static let grpcServerInFlight = MetricFamily(
        "grpc_server_in_flight", .gauge, labels: ["grpc_service"], help: "Calls being served now.")
    public static let grpcClientHandled = MetricFamily(
        "grpc_client_handled_total", .counter, labels: ["grpc_service", "grpc_method", "grpc_code"],
        help: "Calls made to a service, by final status as the caller saw it.")
    public static let grpcClientSeconds = MetricFamily(
        "grpc_client_handling_seconds", .histogram, labels: ["grpc_service", "grpc_method"],
        help: "Time from making a call to its last response message, as the caller saw it.")

    // Storage and shared state.
    public static let databaseTransactions = MetricFamily(
        "leaderboard_db_transactions_total", .counter, labels: ["service", "outcome"],
        help: "Database transactions by outcome: commit, rollback, or unavailable (the database could not be reached).")
    public static let databaseTransactionSeconds = MetricFamily(
        "leaderboard_db_transaction_seconds", .histogram, labels: ["service"],
        help: "Time a transaction took, waiting for a pooled connection included.")
    public static let databaseQuerySeconds = MetricFamily(
        "leaderboard_db_query_seconds", .histogram, labels: ["service"], help: "Time one SQL statement took.")
    public static let databaseInUse = MetricFamily(
        "leaderboard_db_connections_in_use", .gauge, labels: ["service"],
        help: "Pooled connections (PostgreSQL) or the one connection (SQLite) held by work in progress.")
    public static let databasePoolSize = MetricFamily(
        "leaderboard_db_connections_max", .gauge, labels: ["service"],
        help: "Most connections the service's pool opens (1 for SQLite).")
    public static let dependencyUp = MetricFamily(
        "leaderboard_dependency_up", .gauge, labels: ["service", "dependency"],
        help: "1 when the service's last check of a dependency (postgres, sqlite, redis) succeeded, else 0.")
    public static let redisCommands = MetricFamily(
        "leaderboard_redis_commands_total", .counter, labels: ["command", "outcome"],
        help: "Redis commands by outcome: ok, error (a server error reply), failed (timeout or connection).")
    public static let redisCommandSeconds = MetricFamily(
        "leaderboard_redis_command_seconds", .histogram, labels: ["command"],
        help: "Time from sending a Redis command to its reply.")
    public static let redisConnections = MetricFamily(
        "leaderboard_redis_connections", .gauge, help: "Open connections of the Redis pool (pub/sub excluded).")
    public static let redisInFlight = MetricFamily(
        "leaderboard_redis_commands_in_flight", .gauge, help: "Redis commands sent and not yet answered.")

    // Business.
    public static let submissions = MetricFamily(
        "leaderboard_submissions_total", .counter, labels: ["outcome", "reason"],
        help: "Benchmark submissions by outcome (ranked, published, held, rejected, refused) and reason code.")
    public static let rankingBatches = MetricFamily(
        "leaderboard_ranking_batches_total", .counter,
        help: "Board writer transactions that ranked pending records (RankingService).")
    public static let rankingBatchRecords = MetricFamily(
        "leaderboard_ranking_batch_records_total", .counter,
        help: "Pending records the board writer's transactions took; divided by the batches, the mean batch size.")
    public static let rankingBatchSeconds = MetricFamily(
        "leaderboard_ranking_batch_seconds", .histogram,
        help: "Time one board writer transaction took, waiting for the board lock included.")
    public static let reviewsPending = MetricFamily(
        "leaderboard_reviews_pending", .gauge, help: "Submissions held for an operator's review.")
    public static let webSocketClients = MetricFamily(
        "leaderboard_websocket_clients", .gauge, labels: ["board"],
        help: "WebSocket clients watching a board, on this gateway.")
    public static let rateLimited = MetricFamily(
        "leaderboard_rate_limited_total", .counter, labels: ["policy"],
        help: "Requests refused with 429, by rate-limit policy.")
    public static let cacheLookups = MetricFamily(
        "leaderboard_cache_lookups_total", .counter, labels: ["result"],
        help: "Gateway response-cache lookups: hit (local or shared) or miss.")
    public static let mails = MetricFamily(
        "leaderboard_mails_total", .counter, labels: ["outcome"],
        help: "Mails by outcome: sent (SMTP accepted it), failed, or logged (no SMTP relay configured).")
    public static let datasetBytesServed = MetricFamily(
        "leaderboard_dataset_bytes_served_total", .counter,
        help: "Encrypted dataset bytes streamed to devices by DatasetService.")
    public static let datasetChunkFiles = MetricFamily(
        "leaderboard_dataset_chunk_files_sent_total", .counter,
        help: "Dataset chunks the gateway sent straight from DatasetService's verified files (sendfile, one process).")
    public static let retentionDeleted = MetricFamily(
        "leaderboard_retention_deleted_total", .counter, labels: ["service", "kind"],
        help: "Rows removed by retention jobs, by kind.")
    public static let backupLastSuccess = MetricFamily(
        "leaderboard_backup_last_success_timestamp_seconds", .gauge,
        help: "Unix time of the newest complete backup in backup-dir (0: none found).")
    public static let certificateExpiry = MetricFamily(
        "leaderboard_tls_certificate_expiry_timestamp_seconds", .gauge, labels: ["listener"],
        help: "Unix time when the certificate in service stops being valid.")

    // The process.
    public static let buildInfo = MetricFamily(
        "leaderboard_build_info", .gauge, labels: ["version", "targets"],
        help: "Always 1; its labels name the version and the modules this process runs.")
    public static let processCPU = MetricFamily(
        "process_cpu_seconds_total", .counter, help: "User and system CPU time spent, in seconds.")
    public static let processResident = MetricFamily(
        "process_resident_memory_bytes", .gauge, help: "Resident memory size in bytes.")
    public static let processVirtual = MetricFamily(
        "process_virtual_memory_bytes", .gauge, help: "Virtual memory size in bytes.")
    public static let processOpenFDs = MetricFamily(
        "process_open_fds", .gauge, help: "Open file descriptors.")
    public static let processMaxFDs = MetricFamily(
        "process_max_fds", .gauge, help: "Limit of open file descriptors.")
    public static let processStart = MetricFamily(
        "process_start_time_seconds", .gauge, help: "Start of the process since the Unix epoch, in seconds.")
    public static let processThreads = MetricFamily(
        "process_threads", .gauge, help: "Threads of the process.")
}
