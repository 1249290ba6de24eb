// Apache site planning: a virtual host whose document root lives on the mounted volume. Debian keeps
// sites in sites-available and enables them with a link in sites-enabled; RHEL reads conf.d/*.conf.

export interface ApacheSiteInput {
  siteName: string;
  layout: "debian" | "rhel";
  configDir: string;
  port: number;
  serverName: string;
  /** Absolute path (inside the client's mount). */
  documentRoot: string;
}

export interface ApacheSitePlan {
  /** Where the site's configuration goes. */
  path: string;
  /** Debian: the link in sites-enabled that enables it (what a2ensite makes). */
  enabledLink?: string;
  content: string;
  url: string;
}

/** Ports Apache's stock configuration already listens on; any other needs its own Listen line. */
const STOCK_PORTS = new Set([80, 443]);

export function renderApacheSite(s: ApacheSiteInput): ApacheSitePlan {
  const file = `${s.siteName}.conf`;
  const content = [
    `# Managed by gluster-ha: the document root lives on the replicated volume.`,
    ...(STOCK_PORTS.has(s.port) ? [] : [`Listen ${s.port}`]),
    `<VirtualHost *:${s.port}>`,
    `    ServerName ${s.serverName}`,
    `    DocumentRoot ${s.documentRoot}`,
    `    <Directory ${s.documentRoot}>`,
    `        Options -Indexes +FollowSymLinks`,
    `        AllowOverride None`,
    `        Require all granted`,
    `    </Directory>`,
    `</VirtualHost>`,
  ].join("\n") + "\n";
  const url = `http://${s.serverName}${s.port === 80 ? "" : `:${s.port}`}/`;
  return s.layout === "debian"
    ? { path: `${s.configDir}/sites-available/${file}`, enabledLink: `${s.configDir}/sites-enabled/${file}`, content, url }
    : { path: `${s.configDir}/conf.d/${file}`, content, url };
}
