export * from './supervised';
