import { z } from 'zod';
import { Slug } from './common.js';

export const DeviceSchema = z
  .strictObject({
    id: Slug.describe('Device id, unique in the fleet; the last MQTT topic level of this box. Example: "cam-n1-km12"'),
    site: Slug.describe('Site id (junction, road section); the MQTT topic level before the device. Example: "n1-km12"'),
    location: z
      .strictObject({
        lat: z.number().min(-90).max(90).describe('Latitude, degrees WGS84'),
        lon: z.number().min(-180).max(180).describe('Longitude, degrees WGS84'),
        description: z.string().max(200).optional().describe('Free text for operators, e.g. "N1 km 12, northbound"'),
      })
      .optional()
      .describe('Where the box stands; sent in the birth message'),
    data_dir: z
      .string()
      .min(1)
      .default('/var/lib/roadside-agent')
      .describe('Directory for the outbox, evidence and state; relative paths are resolved against the config file. Default /var/lib/roadside-agent'),
    config_probation_s: z
      .number()
      .min(1)
      .max(3600)
      .default(60)
      .describe(
        'After a pushed config is applied (config-apply), seconds during which every camera must deliver frames, the detector run and the uplink be connected; otherwise the previous config is restored. The running config\'s value applies. Default 60',
      ),
  })
  .describe('This box');
export type DeviceConfig = z.infer<typeof DeviceSchema>;
