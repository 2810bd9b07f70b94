// The schema's migrations, in order. Append a new one (next number); never edit an applied one: the checksum
// recorded in schema_migrations would no longer match and receivers refuse to start.
import schema from './0001_schema.js';
import views from './0002_views.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'schema', sql: schema },
  { version: 2, name: 'views', sql: views },
];
