// Where an installed box keeps its files: firmware-scripts/lib.sh (SYS_CONFIG), the systemd unit
// (EnvironmentFile=) and `provision` agree on these.
import { basename, dirname, extname, join } from 'node:path';

/** The config `run` and `doctor` read when --config is not given, and the one `provision` writes. */
export const DEFAULT_CONFIG_FILE = '/etc/roadside-agent/agent.yaml';
export const DEFAULT_DATA_DIR = '/var/lib/roadside-agent';

/** The secrets file `provision` writes beside the config file (systemd's EnvironmentFile=). */
export const secretsFileFor = (configFile: string): string => join(dirname(configFile), 'secrets.env');

/** The CSR `provision` writes for a client certificate still to be signed: tls/client.pem → tls/client.csr. */
export const csrFileFor = (certFile: string): string => join(dirname(certFile), `${basename(certFile, extname(certFile))}.csr`);
