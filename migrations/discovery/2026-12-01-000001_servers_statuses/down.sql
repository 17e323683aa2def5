DROP TRIGGER IF EXISTS servers_changed ON servers;
DROP FUNCTION IF EXISTS notify_servers_changed();
DROP TABLE IF EXISTS statuses;
DROP TABLE IF EXISTS servers;
